# The same app behind Rack::Lint of whichever rack is loaded: every
# response the harness asks this one for must pass it.
require_relative 'apps'
use Rack::Lint
run TestApps.new
