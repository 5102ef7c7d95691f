# Test app for harness.py: PATH_INFO's first segment picks a behaviour.
# Responses use lowercase header names so they pass Rack 3's Lint too.
require 'digest'
require 'json'

class TestApps
  RACK3 = Rack.release.to_i >= 3
  TEXT = { 'content-type' => 'text/plain' }.freeze
  @lock = Mutex.new
  @closes = 0
  @finished = []

  class << self
    attr_reader :lock
    attr_accessor :closes, :finished
  end

  # A body with each and close, counting closes; raises in each on request.
  class CountingBody
    def initialize(chunks, fail_after: nil)
      @chunks = chunks
      @fail_after = fail_after
    end

    def each
      @chunks.each_with_index do |c, i|
        raise 'iteration failed' if @fail_after == i
        yield c
      end
    end

    def close
      TestApps.lock.synchronize { TestApps.closes += 1 }
    end
  end

  # A body served from a file (each + to_path), like Rack::Files.
  class FileBody
    def initialize(path)
      @path = path
    end

    def to_path = @path

    def each
      File.open(@path, 'rb') { |f| while (b = f.read(1000)) do yield b end }
    end
  end

  def text(body, status = 200, extra = {})
    [status, TEXT.merge('content-length' => body.bytesize.to_s).merge(extra), [body]]
  end

  def call(env)
    name = env['PATH_INFO'].split('/')[1].to_s
    respond_to?("r_#{name}", true) ? send("r_#{name}", env) : text("no route #{name}", 404)
  end

  private

  def r_hello(_env) = text('Hello, World!')

  def r_head(_env) = [200, TEXT.merge('content-length' => '5'), []]
  # A HEAD answered with the GET's body, as most frameworks do: Rack::Lint
  # raises if the server iterates it.
  def r_head_body(_env) = [200, TEXT.merge('content-length' => '5'), ['hello']]

  def r_env(env)
    out = { '_enc' => {}, '_types' => {} }
    env.each do |k, v|
      out['_types'][k] = v.class.name
      next unless v.is_a?(String)
      out['_enc'][k] = v.encoding.name
      out[k] = v.dup.force_encoding(Encoding::ISO_8859_1).encode(Encoding::UTF_8)
    end
    %w[rack.version rack.multithread rack.multiprocess rack.run_once rack.hijack?].each { |k| out[k] = env[k] if env.key?(k) }
    out['_input_methods'] = %i[gets each read rewind close].select { |m| env['rack.input'].respond_to?(m) }.map(&:to_s)
    out['_errors_methods'] = %i[puts write flush].select { |m| env['rack.errors'].respond_to?(m) }.map(&:to_s)
    out['_frozen_keys'] = env.keys.all?(&:frozen?)
    text(JSON.generate(out))
  end

  # Reads the body in 64 KiB pieces into a buffer, hashes it, rewinds and hashes again.
  def r_digest(env)
    input = env['rack.input']
    sha = Digest::SHA256.new
    buf = String.new
    n = 0
    while input.read(65_536, buf)
      sha << buf
      n += buf.bytesize
    end
    # Rack 3's Lint wraps rack.input in an object without rewind.
    return text("#{sha.hexdigest} #{n} no-rewind") unless input.respond_to?(:rewind)
    input.rewind
    again = Digest::SHA256.new
    again << buf while input.read(65_536, buf)
    text("#{sha.hexdigest} #{n} #{again.hexdigest == sha.hexdigest ? 'rewound-ok' : 'rewound-differs'}")
  end

  def r_echo(env) = text(env['rack.input'].read)

  def r_partial(env) = text(env['rack.input'].read(10) || '')

  def r_untouched(_env) = text('did not read')

  # The pieces Rack::Lint checks: read(n), read(n, buf), gets, each, rewind, read(nil).
  def r_pieces(env)
    input = env['rack.input']
    got = []
    got << input.read(3)
    buf = String.new
    got << input.read(4, buf) << buf.dup
    got << input.gets
    input.each { |line| got << line }
    got << input.read(5) << input.read << input.read(0)
    if input.respond_to?(:rewind)
      input.rewind
      got << input.read
    end
    env['rack.errors'].puts "pieces app read #{got.last.bytesize} bytes"
    env['rack.errors'].write("a\nb\n")
    env['rack.errors'].flush
    text(JSON.generate(got))
  end

  def r_lines(env) = text(JSON.generate(env['rack.input'].each.to_a))

  def r_download(env)
    n = Integer(env['QUERY_STRING'])
    data = Random.new(42).bytes(n)
    [200, { 'content-type' => 'application/octet-stream', 'content-length' => n.to_s }, [data]]
  end

  def r_download_each(env)
    n = Integer(env['QUERY_STRING'])
    data = Random.new(42).bytes(n)
    body = Enumerator.new { |y| (0...n).step(65_536) { |off| y << data.byteslice(off, 65_536) } }
    [200, { 'content-type' => 'application/octet-stream' }, body]
  end

  def r_stream3(_env)
    body = Enumerator.new do |y|
      3.times do |i|
        sleep 0.2 if i.positive?
        y << "chunk#{i}"
      end
    end
    [200, TEXT.dup, body]
  end

  # A Rack 3 streaming body: call(stream), three writes with flush.
  def r_call3(_env)
    body = proc do |stream|
      3.times do |i|
        sleep 0.2 if i.positive?
        stream.write("part#{i}")
        stream.flush
      end
    ensure
      stream.close
    end
    [200, TEXT.dup, body]
  end

  def r_cookies(_env)
    cookies = RACK3 ? %w[a=1 b=2] : "a=1\nb=2"
    [200, TEXT.merge('set-cookie' => cookies, 'content-length' => '2'), ['ok']]
  end

  def r_to_path(_env)
    path = File.join(__dir__, 'apps.rb')
    [200, TEXT.merge('content-length' => File.size(path).to_s), FileBody.new(path)]
  end

  def r_finished(env)
    env['rack.response_finished'] << ->(_e, status, _h, error) { TestApps.finished << "first #{status} #{error.inspect}" }
    env['rack.response_finished'] << ->(_e, status, _h, _error) { TestApps.finished << "second #{status}" }
    text('callbacks registered')
  end

  def r_finished_log(_env) = text(TestApps.finished.join(','))

  def r_closing(_env) = [200, TEXT.dup, CountingBody.new(%w[a b c], fail_after: 1)]

  def r_closed_ok(_env) = [200, TEXT.dup, CountingBody.new(%w[a b c])]

  def r_close_count(_env) = text(TestApps.closes.to_s)

  def r_boom(_env) = raise(ArgumentError, 'boom before response')

  def r_boom_binary(_env) = raise("bad bytes \xff\xfe".b)

  def r_nonstring(_env) = [200, TEXT.dup, ['ok', 42]]

  def r_bad_header(_env) = [200, { 'x-bad' => "a\rb" }, ['x']]

  def r_bad_name(_env) = [200, { 'bad name' => 'x' }, ['x']]

  def r_bad_status(_env) = [42, {}, ['x']]

  def r_string_status(_env) = ['201', TEXT.dup, ['created']]

  def r_no_body(_env) = [200, {}, 42]

  def r_aborted(env)
    data = env['rack.input'].read
    text("no error: #{data.bytesize} bytes")
  rescue IOError => e
    text(e.message)
  end

  def r_slow(env)
    sleep Float(env['QUERY_STRING'])
    text(Thread.current.name.to_s)
  end

  def r_big(_env) = [200, TEXT.dup, ['x' * ((3 << 20) + 5)]]

  def r_many(_env) = [200, TEXT.dup, (0...1000).map { |i| "#{i}," }]

  def r_threads(_env)
    got = Array.new(4)
    4.times.map { |i| Thread.new { got[i] = i } }.each(&:join)
    text(got.inspect)
  end

  def r_header_forms(_env)
    headers = { 'x-multi' => RACK3 ? %w[1 2] : "1\n2", 'X-Upper' => 'u', 'x-empty' => '', 'content-type' => 'text/plain' }
    [200, headers, []]
  end
end
