# Rack app of the hostile framing suite (hostile_framing_test.go). /head is
# wrapped in Rack::Lint, which raises if the server iterates a HEAD body.
ROUTES = {
  '/ok' => [200, { 'content-type' => 'text/plain' }, ['ok']],
  '/long' => [200, { 'content-length' => '5' }, ['hello', ' world']],
  '/short' => [200, { 'content-length' => '20' }, ['hello']],
  '/chunked' => [200, { 'transfer-encoding' => 'chunked' }, ["5\r\nhello\r\n", "6\r\n world\r\n", "0\r\n\r\n"]],
  '/early' => [103, { 'link' => '</a.css>' }, []],
  '/switch' => [101, { 'upgrade' => 'websocket' }, []],
  '/head' => [200, { 'content-length' => '5', 'content-type' => 'text/plain' }, ['hello']]
}.freeze

map '/head' do
  use Rack::Lint
  run ->(_env) { s, h, b = ROUTES['/head']; [s, h.dup, b.dup] }
end

run lambda { |env|
  s, h, b = ROUTES.fetch(env['PATH_INFO'], ROUTES['/ok'])
  [s, h.dup, b.dup]
}
