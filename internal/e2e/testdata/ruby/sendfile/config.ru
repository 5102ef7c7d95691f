# Sinatra's send_file behind Rack::Sendfile, as Rails sets it up with
# config.action_dispatch.x_sendfile_header = "X-Sendfile".
require 'sinatra/base'

class App < Sinatra::Base
  set :environment, :production

  get '/dl' do
    send_file File.join(ENV.fetch('SENDFILE_ROOT'), params[:name]), disposition: 'attachment', filename: 'r.bin'
  end

  get '/type' do
    env['HTTP_X_SENDFILE_TYPE'].to_s
  end
end

use Rack::Sendfile, 'X-Sendfile'
run App
