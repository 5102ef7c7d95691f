# The e2e contract app (see lang_test.go), wrapped in Rack::Lint so every
# request the tests send must pass it.
require 'digest'
require 'json'

class Pattern
  def initialize(size)
    @size = size
  end

  def each
    block = (0..255).map(&:chr).join.b * 256 # 64 KiB
    sent = 0
    while sent < @size
      n = [block.bytesize, @size - sent].min
      yield block.byteslice(0, n)
      sent += n
    end
  end
end

class Stream
  def each
    3.times do |i|
      yield "chunk #{i}\n"
      sleep 0.3
    end
  end
end

TEXT = { 'content-type' => 'text/plain' }.freeze

suite = lambda do |env|
  path = env['PATH_INFO']
  case path
  when %r{/env\z}
    out = env.select { |_, v| v.is_a?(String) }
    out['rack.multithread'] = env['rack.multithread']
    [200, { 'content-type' => 'application/json' }, [JSON.generate(out)]]
  when '/hash'
    sha = Digest::SHA256.new
    n = 0
    buf = String.new
    while env['rack.input'].read(65537, buf)
      sha << buf
      n += buf.bytesize
    end
    [200, TEXT.dup, ["#{n} #{sha.hexdigest}"]]
  when '/download'
    size = env['QUERY_STRING'].to_i
    [200, { 'content-type' => 'application/octet-stream', 'content-length' => size.to_s }, Pattern.new(size)]
  when '/stream' then [200, TEXT.dup, Stream.new]
  when '/sleep'
    sleep env['QUERY_STRING'].to_f
    [200, TEXT.dup, ['slept']]
  when '/pid' then [200, TEXT.dup, [Process.pid.to_s]]
  when '/unread' then [200, TEXT.dup, ['ignored your body']]
  when '/error' then raise 'boom from the app'
  else [404, TEXT.dup, ['no such test endpoint']]
  end
end

use Rack::Lint
run suite
