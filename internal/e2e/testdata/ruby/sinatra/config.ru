require 'sinatra/base'

class App < Sinatra::Base
  set :environment, :production

  get '/' do
    'Hello from Sinatra'
  end

  get '/hello/:name' do
    "Hello, #{params[:name]}"
  end

  post '/form' do
    "#{params[:a]},#{params[:b]},#{request.script_name},#{request.path_info}"
  end
end

run App
