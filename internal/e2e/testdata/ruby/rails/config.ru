# A minimal Rails app (no database, no asset pipeline) whose controller
# calls send_file; config.action_dispatch.x_sendfile_header puts
# Rack::Sendfile in Rails' middleware, so the answer is an X-Sendfile head
# that gw replaces with the file.
ENV['RAILS_ENV'] ||= 'production'
require 'logger'
require 'action_controller/railtie'

class SendfileRails < Rails::Application
  config.root = __dir__
  config.eager_load = false
  config.secret_key_base = 'gw-test-' * 8
  config.logger = Logger.new($stderr)
  config.log_level = :warn
  config.action_dispatch.x_sendfile_header = 'X-Sendfile'
end

class FilesController < ActionController::Base
  def dl
    send_file File.join(ENV.fetch('SENDFILE_ROOT'), params[:name]),
              type: 'application/x-report', disposition: 'attachment', filename: 'r.bin'
  end

  def type
    render plain: request.headers['X-Sendfile-Type'].to_s
  end

  def ping
    render plain: 'pong'
  end
end

SendfileRails.initialize!
SendfileRails.routes.draw do
  get 'dl' => 'files#dl'
  get 'type' => 'files#type'
  get 'ping' => 'files#ping'
end

run SendfileRails
