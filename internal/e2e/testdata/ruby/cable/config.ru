# ActionCable 6.1 without Rails (async adapter) under gw: websocket-driver
# and nio4r on the socket rack.hijack gives. EchoChannel broadcasts what
# "speak" gets to every subscriber.
require 'logger'
require 'action_cable'

module ApplicationCable
  class Connection < ActionCable::Connection::Base; end
  class Channel < ActionCable::Channel::Base; end
end

class EchoChannel < ApplicationCable::Channel
  def subscribed = stream_from('echo')
  def speak(data) = ActionCable.server.broadcast('echo', { 'text' => data['text'] })
end

ActionCable.server.config.tap do |c|
  c.cable = { 'adapter' => 'async' }
  c.connection_class = -> { ApplicationCable::Connection }
  c.disable_request_forgery_protection = true
  c.logger = Logger.new($stderr, level: Logger::WARN)
end

run ActionCable.server
