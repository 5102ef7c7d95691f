use Rack::ContentLength
