# Raw connections under gw (docs/design/websocket.md, "Raw connections"):
#   /raw      full hijack, then a thread echoes bytes (select on the socket)
#   /loop     full hijack, echoed inside the request (holds the slot)
#   /slow     full hijack after 0.2 s (past gw's idle watch of the connection)
#   /partial  partial hijack: gw_rack writes the head, the callable echoes
#   /faye     faye-websocket echo (EventMachine thread)
#   /fayepid  the same, first sending the runner's pid
#   /plain    an upgrade request the app answers as HTTP
#   /info     rack.hijack? of an ordinary request
# LOG gets "eof /path" when the app reads EOF from its socket, and "kind
# /path tcp" (the client's socket, handed over) or "kind /path unix" (a
# socketpair end gw relays) when it starts echoing.
require 'socket'

LOG = ENV['LOG']
def log_line(s) = LOG && File.open(LOG, 'a') { |f| f.puts(s) }

# Echo until EOF: IO.select on a real socket.
def echo(io, path)
  log_line("kind #{path} #{io.is_a?(TCPSocket) ? 'tcp' : 'unix'}")
  loop do
    IO.select([io])
    data = io.read_nonblock(256 << 10, exception: false)
    next if data == :wait_readable
    break if data.nil?
    io.write(data)
  end
  log_line("eof #{path}")
  io.close
end

HEAD = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n"

faye = begin
  require 'faye/websocket'
  lambda do |env|
    ws = Faye::WebSocket.new(env, nil, max_length: 4 << 20)
    ws.on(:message) { |e| ws.send(e.data) }
    ws.on(:close) { |e| log_line("faye close #{e.code}") }
    ws.on(:open) { ws.send(Process.pid.to_s) } if env['PATH_INFO'] == '/fayepid'
    ws.rack_response
  end
rescue LoadError
  ->(_env) { [500, {}, ['faye-websocket is not installed']] }
end

run lambda { |env|
  case env['PATH_INFO']
  when '/raw'
    io = env['rack.hijack'].call
    io.write(HEAD)
    Thread.new { echo(io, '/raw') }
    [-1, {}, []]
  when '/slow'
    sleep 0.2
    io = env['rack.hijack'].call
    io.write(HEAD)
    Thread.new { echo(io, '/slow') }
    [-1, {}, []]
  when '/loop'
    io = env['rack.hijack'].call
    io.write(HEAD)
    echo(io, '/loop')
    [-1, {}, []]
  when '/partial'
    [101, { 'upgrade' => 'echo', 'connection' => 'Upgrade', 'rack.hijack' => ->(io) { Thread.new { echo(io, '/partial') } } }, []]
  when '/faye', '/fayepid'
    faye.call(env)
  when '/plain'
    [426, { 'content-type' => 'text/plain' }, ["no upgrade here: hijack? #{env['rack.hijack?']}\n"]]
  else
    [200, { 'content-type' => 'text/plain' }, ["hijack? #{env['rack.hijack?']}\n"]]
  end
}
