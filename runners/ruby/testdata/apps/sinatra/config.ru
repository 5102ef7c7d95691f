require 'sinatra/base'
require 'json'

class SinatraApp < Sinatra::Base
  get('/') { 'sinatra ok' }
  get('/hello/:name') { "hello #{params[:name]}" }
  get('/files/:name') { "file=#{params[:name]}" }
  post('/form') { "a=#{params[:a]} b=#{params[:b]}" }
  post('/json') do
    content_type :json
    raw = request.body.read
    { 'got' => JSON.parse(raw), 'length' => raw.bytesize }.to_json
  end
  post('/upload') do
    up = params[:up]
    "#{params[:f]}|#{up[:filename]}|#{up[:tempfile].read}"
  end
  get('/stream') { stream { |out| 3.times { |i| out << "#{i}\n" } } }
  get('/fail') { raise 'sinatra boom' }
  get('/env') { "#{settings.environment} #{request.host} #{request.port} #{request.scheme}" }
end

run SinatraApp
