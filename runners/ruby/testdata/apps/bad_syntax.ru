use Rack::ContentLength
run ->(env) { [200, {}, ['ok']]
def (
