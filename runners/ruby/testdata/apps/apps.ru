# The harness's test app: one behaviour per path (see apps.rb).
require_relative 'apps'
run TestApps.new
