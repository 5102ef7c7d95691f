# frozen_string_literal: true

# gw_rack: the gw runner shim that hosts one Rack application (config.ru).
#
# gw starts it once per worker process:
#
#     ruby gw_rack.rb --app PATH/config.ru [--dir DIR] [--name NAME]
#                     --control-fd 3 --slot-fds 4:5,6:7
#
# and talks to it over the bridge protocol (proto/bridge.proto, the authority
# for framing and messages). A slot is a pipe pair R:W (gw's form: requests
# in on R, responses out on W) or one socket N (the test harnesses' form).
# Each slot gets one thread that serves its
# requests one at a time; the main thread answers PINGs on the control socket
# and exits the moment that socket reaches EOF (the gateway is gone).
#
#     ruby gw_rack.rb --selftest DIR
#
# checks the frame codec against golden frames (NAME.bin + NAME.json).
#
# Rack 2.2 and 3.x are both hosted; the differences (protocols.md §5, trap 10)
# are confined to Builder.parse_file's result and rack.version: rack.input is
# rewindable for both (spooled as the app reads it), response header values
# may be "\n"-joined Strings or Arrays, and a body may be an Array, respond to
# each (streamed chunk by chunk) or to call (Rack 3 streaming). PATH_INFO is
# the raw (still percent-encoded) path taken from REQUEST_URI whenever it
# decodes to the PATH_INFO gw sent, as Puma passes it: Rack routers unescape
# PATH_INFO themselves, so a decoded one is decoded twice ("%2520"), and Rack
# 3.1's Lint rejects the '#' a decoded "%23" gives.
#
# Sections, in the order every gw shim uses: (1) constants; (2) frame codec;
# (3) argv; (4) app loading; (5) per-request adapter; (6) slot loop;
# (7) control; (8) owner watcher; (9) main. Stdlib and rack only, Ruby 3.1+.

require 'socket'
require 'io/nonblock'
require 'tempfile'

module GwRack
  # -------------------------------------------------------------------------
  # (1) Constants and protocol version
  # -------------------------------------------------------------------------

  PROTOCOL_VERSION = 2

  # FrameType (bridge.proto).
  REQUEST_HEAD, REQUEST_BODY, REQUEST_END = 1, 2, 3    # gateway -> runner (slot)
  RESPONSE_HEAD, RESPONSE_BODY, RESPONSE_END = 4, 5, 6 # runner -> gateway (slot)
  READY, LOAD_ERROR, PING, PONG = 16, 17, 18, 19       # control socket
  RAW_CONNECT, RAW_HIJACKED = 12, 13                    # session channel; slot (raw connections)
  RAW_CLOSED = 23                                       # session channel, to gw: a handed-over socket is closed
  RAW_HIJACKED_FRAME = [RAW_HIJACKED, 0, 0, 0].pack('CCvV').freeze
  CLIENT_GONE = 14  # gateway -> runner (slot): for ASGI runners; discarded here
  EARLY_HINTS = 15  # runner -> gateway (slot): a 103 (rack.early_hints)
  BODY_FRAMES = [REQUEST_BODY, RESPONSE_BODY].freeze

  HEADER = 'CCvV'               # type, flags, reserved, payload length (8 bytes)
  MAX_PAYLOAD = 16 << 20        # bridge.proto: at most 16 MiB per frame
  MAX_BODY_FRAME = 1 << 20      # app chunks are split into frames this big
  READ_BUFFER = 64 << 10        # buffered reader size per socket
  FILE_BLOCK = 256 << 10        # read size for to_path bodies and spooled input
  SPOOL_MEMORY = 1 << 20        # rack.input kept in memory up to this, then a temp file
  COPY_CHUNK = 16 << 10         # body chunks up to this are copied into the output buffer
  BINARY = Encoding::ASCII_8BIT
  EMPTY = ''.b.freeze
  RESPONSE_END_OK = [RESPONSE_END, 0, 0, 0].pack(HEADER).freeze
  NUL = "\0"
  HEAD_FIELDS = %i[env_block env url_scheme request_id raw_connection].freeze # as decode_head returns them
  HEADER_NAMES = {} # response header name -> :ok, :length or :skip, once checked (Response#header_name)
  ZSTRINGS = Hash.new { |h, n| f = ('Z*' * n).freeze; n > 256 ? f : h[n] = f } # (un)packs n NUL-ended strings in C

  EXIT_PROTOCOL = 3  # a slot or control stream is desynced
  EXIT_LOAD = 4      # LOAD_ERROR was sent: the app cannot be loaded
  EXIT_MEMORY = 5    # NoMemoryError under limits.memory (proc.ExitMemory)

  OPTIONS = %w[app callable dir name control-fd slot-fds session-fd selftest].freeze
  USAGE = "usage: gw_rack.rb --app PATH/config.ru [--dir DIR] [--name NAME]" \
          " --control-fd FD --slot-fds R:W|FD[,...]\n" \
          "       gw_rack.rb --selftest DIR\n"

  # Field kinds of the flat schema. Varint kinds sort below length-delimited ones.
  UINT32, UINT64, BOOL, STRING, BYTES, REPEATED_BYTES = (0..5).to_a
  KIND_DEFAULTS = { UINT32 => 0, UINT64 => 0, BOOL => false, STRING => '', BYTES => EMPTY }.freeze

  # Every message in bridge.proto: frame type -> fields in field-number order.
  SCHEMAS = {
    REQUEST_HEAD => [[1, :env, REPEATED_BYTES], [2, :url_scheme, STRING], [3, :request_id, STRING], [4, :env_block, BYTES],
                     [5, :websocket_session, UINT32], [6, :raw_connection, UINT32]],
    REQUEST_END => [[1, :aborted, BOOL], [2, :reason, STRING]],
    RESPONSE_HEAD => [[1, :status, UINT32], [2, :headers, REPEATED_BYTES], [3, :header_block, BYTES]],
    RESPONSE_END => [[1, :error, STRING], [2, :logvars, REPEATED_BYTES]], # logvars: uWSGI's, unused here
    READY => [[1, :protocol, UINT32], [2, :pid, UINT32], [3, :runtime, STRING], [4, :slots, UINT32],
              [5, :websocket, BOOL], [6, :raw, BOOL], [7, :client_gone, BOOL],
              [8, :raw_socket, BOOL], [9, :ws_socket, BOOL]],
    EARLY_HINTS => [[2, :headers, REPEATED_BYTES]],
    CLIENT_GONE => [],
    LOAD_ERROR => [[1, :stage, STRING], [2, :message, STRING], [3, :detail, STRING]],
    PING => [[1, :seq, UINT64]],
    PONG => [[1, :seq, UINT64], [2, :requests, UINT64], [3, :busy, UINT32]],
    20 => [], # RELOAD_APP, CACHE_*: uWSGI's API in gw_wsgi.py; never sent here
    21 => [[1, :op, UINT32], [2, :key, BYTES], [3, :value, BYTES], [4, :expires, UINT64]],
    22 => [[1, :ok, BOOL], [2, :value, BYTES]],
  }.freeze
  # frame type -> {field tag (number << 3 | the wire type its kind uses) => [name, kind]}
  DECODE_TAGS = SCHEMAS.transform_values do |fields|
    fields.to_h { |num, name, kind| [num << 3 | (kind >= STRING ? 2 : 0), [name, kind]] }.freeze
  end.freeze
  MESSAGE_DEFAULTS = SCHEMAS.transform_values { |f| f.to_h { |_, name, kind| [name, KIND_DEFAULTS[kind]] }.freeze }.freeze

  # Header names must be RFC 9110 tokens; values hold no CTL except HTAB.
  TOKEN = /\A[!#$%&'*+\-.^_`|~0-9A-Za-z]+\z/n.freeze
  BAD_VALUE = /[\x00-\x08\x0a-\x1f\x7f]/n.freeze
  BAD_BLOCK = /[\x01-\x08\x0a-\x1f\x7f]/n.freeze # BAD_VALUE less the separator
  DIGITS = /\A\d+\z/.freeze
  # Frames of the shim, rubygems and Rack::Builder: noise in a load error.
  NOISE = %r{\A(?:#{Regexp.escape(__FILE__)}:|<internal:)|/rubygems/core_ext/kernel_require\.rb:|/rack/builder\.rb:}.freeze

  # -------------------------------------------------------------------------
  # (2) Frame codec: 8-byte header + payload; hand-written proto3 for the
  #     flat messages (canonical encoding: field-number order, defaults omitted)
  # -------------------------------------------------------------------------

  # A frame or message that breaks bridge.proto; the stream is desynced.
  class ProtocolError < StandardError; end

  module Codec
    module_function

    def put_varint(out, value)
      raise RangeError, "negative varint #{value}" if value.negative?
      while value >= 0x80
        out << ((value & 0x7F) | 0x80)
        value >>= 7
      end
      out << value
    end

    # Decodes the varint at buf[pos]; returns [value, next pos].
    def uvarint(buf, pos)
      result = shift = 0
      loop do
        b = buf.getbyte(pos) or raise ProtocolError, 'truncated message'
        pos += 1
        result |= (b & 0x7F) << shift
        return [result & 0xFFFF_FFFF_FFFF_FFFF, pos] if b < 0x80
        shift += 7
        raise ProtocolError, 'varint longer than 10 bytes' if shift >= 70
      end
    end

    # str's bytes, as a String that appends to a binary buffer (no copy when ASCII).
    def bin(str)
      str = str.to_s
      str.encoding == BINARY || str.ascii_only? ? str : str.b
    end

    def put_bytes(out, tag, str)
      size = str.bytesize
      size < 0x80 ? out << tag << size : put_varint(out << tag, size)
      out << str
    end

    # A proto3 string must be valid UTF-8 (Go rejects it otherwise).
    def utf8_bytes(str)
      str = str.to_s
      if [Encoding::UTF_8, BINARY, Encoding::US_ASCII].include?(str.encoding)
        str = str.dup.force_encoding(Encoding::UTF_8)
        str = str.scrub('?') unless str.valid_encoding?
      else
        str = str.encode(Encoding::UTF_8, invalid: :replace, undef: :replace, replace: '?')
      end
      str.b
    end

    # Encodes Hash msg (Symbol keys) as the proto3 message of frame type ftype.
    def encode_message(ftype, msg)
      out = String.new(capacity: 64)
      SCHEMAS.fetch(ftype).each do |num, name, kind|
        value = msg[name]
        next if value.nil? || value == KIND_DEFAULTS[kind] || value == false
        tag = num << 3 | (kind >= STRING ? 2 : 0)
        case kind
        when REPEATED_BYTES
          value.each { |item| put_bytes(out, tag, bin(item)) }
        when STRING, BYTES
          value = kind == STRING ? utf8_bytes(value) : bin(value)
          put_bytes(out, tag, value) unless value.empty?
        when BOOL
          out << tag << 1
        else
          value = Integer(value)
          raise RangeError, "#{name}=#{value} out of range" if value >> (kind == UINT32 ? 32 : 64) != 0
          out << tag
          put_varint(out, value)
        end
      end
      out
    end

    # Decodes a proto3 payload into a Hash holding every field (defaults
    # filled in). Unknown fields, and known ones with an unexpected wire type,
    # are skipped by wire type (0, 1, 2, 5), as proto3 requires.
    def decode_message(ftype, payload)
      tags = DECODE_TAGS[ftype] or raise ProtocolError, "frame type #{ftype} carries no message"
      msg = MESSAGE_DEFAULTS[ftype].dup
      tags.each_value { |name, kind| msg[name] = [] if kind == REPEATED_BYTES }
      pos = 0
      size = payload.bytesize
      while pos < size
        key = payload.getbyte(pos)
        key < 0x80 ? pos += 1 : (key, pos = uvarint(payload, pos))
        raise ProtocolError, 'field number 0' if key < 8
        name, kind = tags[key]
        case key & 7
        when 2
          len = payload.getbyte(pos) or raise ProtocolError, 'truncated message'
          len < 0x80 ? pos += 1 : (len, pos = uvarint(payload, pos))
          raise ProtocolError, 'length-delimited field overruns the message' if pos + len > size
          data = payload.byteslice(pos, len)
          pos += len
          msg[name] << data if kind == REPEATED_BYTES
          msg[name] = kind == STRING ? data.force_encoding(Encoding::UTF_8) : data if name && kind != REPEATED_BYTES
        when 0
          value, pos = uvarint(payload, pos)
          msg[name] = kind == BOOL ? value != 0 : kind == UINT32 ? value & 0xFFFF_FFFF : value if name
        when 1 then pos += 8
        when 5 then pos += 4
        else raise ProtocolError, "unsupported wire type #{key & 7}"
        end
      end
      raise ProtocolError, 'truncated message' if pos > size
      msg
    end

    def frame_header(ftype, length)
      raise ArgumentError, "frame payload of #{length} bytes exceeds 16 MiB" if length > MAX_PAYLOAD
      [ftype, 0, 0, length].pack(HEADER)
    end

    def message_frame(ftype, msg)
      payload = encode_message(ftype, msg)
      frame_header(ftype, payload.bytesize) << payload
    end
  end

  # One buffered reader per socket: big reads, frames parsed at an offset.
  class FrameReader
    def initialize(io)
      @io = io
      @buf, @off = String.new, 0 # bytes read, parsed from @off on
    end

    # Returns [type, payload] or nil when the stream ends (cleanly or
    # mid-frame: either way the gateway is gone). Raises ProtocolError for
    # an oversized frame.
    def read_frame
      return nil if @buf.bytesize - @off < 8 && !fill
      ftype = @buf.getbyte(@off)
      length = @buf.unpack1('V', offset: @off + 4)
      raise ProtocolError, "frame of #{length} bytes exceeds 16 MiB" if length > MAX_PAYLOAD
      @off += 8
      avail = @buf.bytesize - @off
      return [ftype, @buf.byteslice((@off += length) - length, length)] if avail >= length
      head = @buf.byteslice(@off, avail)
      @buf, @off = String.new, 0
      rest = @io.read(length - avail) # a big payload: straight from the socket
      return nil if rest.nil? || rest.bytesize != length - avail
      [ftype, avail.zero? ? rest : rest.prepend(head)]
    rescue IOError, SystemCallError
      nil
    end

    # Consumes an empty REQUEST_END if buffered: the gateway writes one with a body-less head.
    def empty_end?
      return false unless @buf.bytesize - @off >= 8 && @buf.getbyte(@off) == REQUEST_END
      @buf.unpack1('V', offset: @off + 4).zero? && (@off += 8) && true
    end

    private

    def fill
      while @buf.bytesize - @off < 8
        if @off < @buf.bytesize then @buf = @buf.byteslice(@off..) << @io.readpartial(READ_BUFFER) # a partial frame
        else @io.readpartial(READ_BUFFER, @buf) # into the same buffer: no malloc per read
        end
        @off = 0
      end
      true
    rescue EOFError
      false
    end
  end

  def self.selftest(dir)
    require 'json'
    names = Dir.children(dir).grep(/\.(bin|json)\z/).map { |f| f.sub(/\.\w+\z/, '') }.uniq.sort
    skipped = 0
    failed = names.count do |name|
      problems = begin
        golden = JSON.parse(File.read(File.join(dir, "#{name}.json")))
        if (why = golden_skip(golden))
          skipped += 1
          puts "SKIP #{name}: #{why}"
          next false
        end
        check_golden(golden, File.binread(File.join(dir, "#{name}.bin")))
      rescue StandardError => e # a missing or malformed file fails its case
        ["#{e.class}: #{e.message}"]
      end
      puts "FAIL #{name}: #{problems.join('; ')}" unless problems.empty?
      !problems.empty?
    end
    puts "#{skipped} skipped" if skipped.positive?
    puts "#{names.size - failed - skipped} passed, #{failed} failed"
    failed.zero? ? 0 : 1
  end

  # WS_CONNECT .. WS_CLOSE: WebSocket sessions on the session channel. gw
  # sends them only to a runner whose READY says websocket (ASGI, uWSGI's
  # API in gw_wsgi.py); a Rack app does WebSockets over rack.hijack (raw
  # connections), so this shim never encodes or decodes one.
  SELFTEST_SKIPPED = (7..11).freeze

  def self.golden_skip(golden)
    return 'WebSocket session frames: READY websocket is never set here (Rack uses raw connections)' if SELFTEST_SKIPPED.include?(golden['type'])
    'RAW_CLOSED with message counts: ASGI handed-over WebSockets only' if golden['type'] == RAW_CLOSED && !(golden['body'] || '').empty?
  end

  # RAW_CONNECT, RAW_HIJACKED, RAW_CLOSED: raw payloads (an id) or none,
  # checked against what RawChannel reads and writes and RAW_HIJACKED_FRAME.
  def self.check_raw_golden(golden, frame)
    ftype, id = golden['type'], golden['id']
    problems = []
    problems << "unexpected body or fields #{golden.keys.sort.inspect}" unless (golden['body'] || '').empty? && (golden['fields'] || {}).empty?
    case ftype
    when RAW_CONNECT # RawChannel#start's check, then its id
      t, _, _, length = frame.unpack(HEADER)
      problems << "RawChannel would refuse header #{[t, length].inspect}" unless t == RAW_CONNECT && length == 4 && frame.bytesize == 12
      problems << "decode: id #{frame.byteslice(8, 4).unpack1('V')}, want #{id}" if frame.byteslice(8, 4).unpack1('V') != id
    when RAW_CLOSED # RawChannel#closed writes it
      out = +''.b
      sink = Object.new
      sink.define_singleton_method(:syswrite) { |b| out << b }
      RawChannel.new(sink).closed(id)
      problems << "encode: RawChannel#closed wrote #{out.unpack1('H*')}, want #{frame.unpack1('H*')}" if out != frame
    else # RAW_HIJACKED: empty
      problems << "encode: RAW_HIJACKED_FRAME #{RAW_HIJACKED_FRAME.unpack1('H*')}, want #{frame.unpack1('H*')}" if RAW_HIJACKED_FRAME != frame
    end
    problems
  end

  def self.check_golden(golden, frame)
    ftype = golden['type']
    return check_raw_golden(golden, frame) if [RAW_CONNECT, RAW_HIJACKED, RAW_CLOSED].include?(ftype)
    body_frame = BODY_FRAMES.include?(ftype)
    want = body_frame ? latin1(golden['body'] || '') : json_message(ftype, golden['fields'] || {})
    payload = body_frame ? want : Codec.encode_message(ftype, want)
    problems = []
    header, expected = frame.unpack(HEADER), [ftype, 0, 0, frame.bytesize - 8]
    problems << "header #{header.inspect}, want #{expected.inspect}" if header != expected
    got = body_frame ? frame.byteslice(8..) : Codec.decode_message(ftype, frame.byteslice(8..))
    if body_frame
      problems << "decode: body #{got[0, 64].inspect}, want #{want[0, 64].inspect}" if got != want
    else
      want.each { |k, v| problems << "decode: #{k} = #{got[k].inspect}, want #{v.inspect}" if got[k] != v }
    end
    if ftype == REQUEST_HEAD # the slot loop's decoder and encoder too
      fast = decode_head(frame.byteslice(8..)).zip([EMPTY, [], '', '', 0]).map { |v, default| v || default }
      problems << "decode_head: #{fast.inspect}" if fast != want.values_at(*HEAD_FIELDS)
    elsif ftype == RESPONSE_HEAD && want[:headers].empty?
      (resp = Response.new(nil)).start(want[:status], want[:header_block].split(NUL, -1).each_slice(2).to_a)
      problems << "Response#start: #{resp.out.unpack1('H*')}" if resp.out != frame
    end
    encoded = Codec.frame_header(ftype, payload.bytesize) << payload
    if encoded != frame && !golden['decode_only'] # decode_only: non-canonical input
      at = (0..).find { |i| encoded.getbyte(i) != frame.getbyte(i) }
      problems << "encode: differs at byte #{at}: got #{encoded.byteslice(at, 16).unpack1('H*')}, " \
                  "want #{frame.byteslice(at, 16).to_s.unpack1('H*')}"
    end
    problems
  end

  # JSON strings carry bytes as U+0000..U+00FF.
  def self.latin1(str) = str.encode(Encoding::ISO_8859_1).force_encoding(BINARY)

  # Golden JSON fields -> a message Hash. Field names are the proto names;
  # protojson's lowerCamelCase is accepted too.
  def self.json_message(ftype, fields)
    schema = SCHEMAS[ftype] or raise ArgumentError, "unknown frame type #{ftype.inspect}"
    seen = []
    msg = schema.to_h do |_, name, kind|
      seen << name.to_s << (camel = name.to_s.gsub(/_([a-z])/) { Regexp.last_match(1).upcase })
      value = fields.key?(name.to_s) ? fields[name.to_s] : fields[camel]
      [name, if value.nil? then kind == REPEATED_BYTES ? [] : KIND_DEFAULTS[kind]
             elsif kind == REPEATED_BYTES then value.map { |v| latin1(v) }
             elsif kind == BYTES then latin1(value)
             elsif kind == STRING then latin1(value).force_encoding(Encoding::UTF_8)
             elsif kind == BOOL then value ? true : false
             else Integer(value) # protojson writes uint64 as a decimal string
             end]
    end
    unknown = fields.keys - seen
    raise ArgumentError, "unknown fields #{unknown.sort.inspect}" unless unknown.empty?
    msg
  end

  # -------------------------------------------------------------------------
  # (3) argv parsing
  # -------------------------------------------------------------------------

  # Bad command line (LOAD_ERROR stage "args").
  class UsageError < StandardError; end

  def self.parse_args(argv)
    opts = {}
    i = 0
    while i < argv.size
      name, eq, value = argv[i].partition('=')
      if %w[-h --help].include?(name)
        $stdout.write(USAGE)
        exit!(0)
      end
      raise UsageError, "unknown argument #{argv[i].inspect}" unless name.start_with?('--') && OPTIONS.include?(name[2..])
      if eq.empty?
        i += 1
        raise UsageError, "#{name} needs a value" if i == argv.size
        value = argv[i]
      end
      opts[name[2..].tr('-', '_').to_sym] = value
      i += 1
    end
    return opts if opts[:selftest]
    raise UsageError, '--app is required' if opts[:app].to_s.empty?
    begin
      opts[:control_fd] = Integer(opts[:control_fd], 10)
      # 'R:W' -> [R, W] (pipes); 'N' -> N (a socket)
      opts[:slot_fds] = opts[:slot_fds].split(',').map do |item|
        item.include?(':') ? item.split(':', 2).map { |fd| Integer(fd, 10) } : Integer(item, 10)
      end
    rescue ArgumentError, TypeError, NoMethodError
      raise UsageError, '--control-fd FD and --slot-fds R:W|FD[,...] are required'
    end
    opts[:session_fd] = Integer(opts[:session_fd], 10) if opts[:session_fd]
    fds = [opts[:control_fd]] + opts[:slot_fds].flatten
    if opts[:slot_fds].empty? || fds.uniq.size != fds.size || fds.min.negative?
      raise UsageError, "file descriptors must be distinct and >= 0: #{fds.inspect}"
    end
    opts
  end

  # The --control-fd value when the rest of argv could not be parsed.
  def self.control_fd_hint(argv)
    argv.each_with_index do |arg, i|
      value = arg.start_with?('--control-fd=') ? arg.split('=', 2)[1] : (arg == '--control-fd' ? argv[i + 1] : nil)
      return value.to_i if value&.match?(DIGITS)
    end
    nil
  end

  # -------------------------------------------------------------------------
  # (4) App loading
  # -------------------------------------------------------------------------

  # Loads config.ru the way rackup does, after bundler when a Gemfile sits
  # beside it (as `bundle exec` would). The cwd is already the app's dir.
  def self.load_app(path)
    ENV['RACK_ENV'] ||= 'production' # Rails and Sinatra read it at load time
    gemfile = ENV['BUNDLE_GEMFILE'].to_s
    gemfile = %w[Gemfile gems.rb].map { |f| File.join(File.dirname(path), f) }.find { |f| File.file?(f) } if gemfile.empty?
    if gemfile
      ENV['BUNDLE_GEMFILE'] = File.expand_path(gemfile)
      require 'bundler/setup'
    end
    begin
      require 'rack'
    rescue LoadError => e
      raise e unless gemfile
      raise LoadError, "#{e.message.lines.first.chomp} (the app's bundle, #{ENV['BUNDLE_GEMFILE']}, must include rack)"
    end
    require 'uri' # Rack 2's Lint uses URI without loading it
    ARGV.clear # Sinatra and friends parse ARGV at load time; gw's flags are not theirs
    # Rack 2 returns [app, options], Rack 3 the app (protocols.md §5.4).
    result = Rack::Builder.parse_file(path)
    app = result.is_a?(Array) ? result.first : result
    raise TypeError, "#{path} built a #{app.class}, which does not respond to call" unless app.respond_to?(:call)
    app
  end

  def self.app_frames(exc) = (exc.backtrace || []).grep_v(NOISE)

  # One line naming an exception: "file:line: message (Class)".
  def self.exc_line(exc, frames = app_frames(exc))
    text = (exc.message.to_s.lines.first || '').chomp
    text = exc.class.name if text.empty?
    loc = frames.first&.sub(/:in .*\z/m, '')
    loc = nil if exc.is_a?(SyntaxError) || (loc && text.start_with?("#{loc}:")) # the message has it
    "#{loc ? "#{loc}: " : ''}#{text} (#{exc.class})"
  end

  # Ruby's own report (order: top), less the shim's and loaders' frames.
  def self.exc_report(exc)
    frames = app_frames(exc)
    lines = exc.message.to_s.lines.map(&:chomp)
    text = lines.shift.to_s
    text = exc.class.name if text.empty?
    first = "#{frames.empty? ? '' : "#{frames.shift}: "}#{text} (#{exc.class})"
    ([first] + lines + frames.map { |f| "\tfrom #{f}" }).join("\n") << "\n"
  end

  # -------------------------------------------------------------------------
  # (5) Per-request adapter: Rack env, rack.input, response frames
  # -------------------------------------------------------------------------

  # The slot socket broke while the response was being written.
  class GatewayGone < StandardError; end

  def self.fatal(status, message)
    $stderr.write("gw_rack: #{message}\n")
    exit!(status)
  end

  # The address-space limit gw set (limits.memory), or nil.
  MEMORY_LIMIT = begin
    soft = Process.getrlimit(:AS)[0]
    soft == Process::RLIM_INFINITY ? nil : soft
  rescue StandardError
    nil
  end

  # After the app's NoMemoryError was answered: under limits.memory the
  # runner exits, as its heap may be half-updated; gw starts a fresh one
  # and counts the exit as the limit's.
  def self.exit_if_out_of_memory(exc)
    return unless MEMORY_LIMIT && exc.is_a?(NoMemoryError)

    fatal(EXIT_MEMORY, "NoMemoryError: the app reached limits.memory (address space #{MEMORY_LIMIT} bytes); exiting")
  end

  # rack.input: the body read lazily from REQUEST_BODY frames up to
  # REQUEST_END, and rewindable (Rack 2 requires it; Rack 3 apps such as
  # Rails still call rewind). What the app has read is kept, in memory up
  # to SPOOL_MEMORY and then in an unlinked temp file, so a 1 GiB upload
  # never sits in memory. Reads never go past CONTENT_LENGTH. An aborted
  # body makes the read that needs data past REQUEST_END raise IOError,
  # and every later one too.
  class Input
    def initialize(reader, length, ended)
      @reader, @length = reader, length # length nil: the body runs to REQUEST_END
      @pos = @received = 0          # the app's position; bytes taken from the slot (all spooled)
      @frame, @frame_start = EMPTY, 0 # the last frame, covering [@frame_start, @received)
      @mem, @mem_owned = nil, false # spooled bytes while small (owned: ours to append to)
      @ended, @slot_eof = ended, false # REQUEST_END (or EOF) seen; the gateway closed the slot
      @file = @error = nil          # spooled bytes once big; why the body stopped early
    end

    def read(length = nil, buffer = nil)
      if length.nil?
        data = String.new
        while (seg = segment(MAX_PAYLOAD))
          data << seg
        end
      else
        raise ArgumentError, "negative length #{length} given" if length.negative?
        data = length.zero? ? String.new : segment(length)
        while data && data.bytesize < length && (seg = segment(length - data.bytesize))
          data << seg
        end
      end
      return data if buffer.nil?
      buffer.replace(data || EMPTY)
      data && buffer
    end

    def gets(sep = "\n", _limit = nil)
      raise ArgumentError, 'gw_rack: rack.input#gets supports only "\n"' unless sep == "\n"
      line = nil
      while (seg = segment(MAX_PAYLOAD, peek: true))
        nl = seg.index("\n")
        part = nl ? seg.byteslice(0, nl + 1) : seg
        @pos += part.bytesize
        line = line ? line << part : part
        break if nl
      end
      line
    end

    def each
      return enum_for(:each) unless block_given?
      while (line = gets)
        yield line
      end
      self
    end

    def rewind = (@pos = 0)
    def close; end # Rack 3 allows it; the slot loop drains what is left

    # Discards the rest of the request stream; false if the slot hit EOF.
    def drain
      next_frame until @ended
      @file&.close
      @file = @mem = nil
      @frame = EMPTY
      !@slot_eof
    end

    private

    # Up to max bytes at @pos (advanced unless peek), or nil at end of body.
    def segment(max, peek: false)
      if @length
        left = @length - @pos
        return nil if left <= 0
        max = left if left < max
      end
      return nil if @pos >= @received && !fetch
      data =
        if @pos >= @frame_start
          @frame.byteslice(@pos - @frame_start, max)
        elsif @mem
          @mem.byteslice(@pos, [max, @received - @pos].min)
        else
          @file.pread([max, @frame_start - @pos, FILE_BLOCK].min, @pos)
        end
      @pos += data.bytesize unless peek
      data
    end

    # Spools the next non-empty REQUEST_BODY frame; false at end of body.
    def fetch
      until @ended
        payload = next_frame
        next if payload.nil? || payload.empty?
        spool(payload)
        return true
      end
      raise IOError, "request body aborted: #{@error}" if @error
      false
    end

    # The next REQUEST_BODY payload, or nil at REQUEST_END/EOF.
    def next_frame
      ftype, payload = @reader.read_frame
      if ftype.nil?
        @ended = @slot_eof = true
        @error = 'gateway closed the slot'
        return nil
      end
      return payload if ftype == REQUEST_BODY
      GwRack.fatal(EXIT_PROTOCOL, "slot: frame type #{ftype} inside a request body") if ftype != REQUEST_END
      @ended = true
      fin = Codec.decode_message(REQUEST_END, payload)
      @error = fin[:reason].empty? ? 'aborted' : fin[:reason] if fin[:aborted]
      nil
    rescue ProtocolError => e
      GwRack.fatal(EXIT_PROTOCOL, "slot: #{e.message}")
    end

    def spool(payload)
      if @file
        @file.write(payload)
      elsif @received + payload.bytesize > SPOOL_MEMORY
        @file = Tempfile.create('gw-rack-input', binmode: true)
        File.unlink(@file.path)
        @file.sync = true # pread must see every write
        @file.write(@mem) if @mem
        @file.write(payload)
        @mem = nil
      elsif @mem.nil?
        @mem = payload
      else
        @mem = String.new(@mem, capacity: SPOOL_MEMORY) unless @mem_owned
        @mem_owned = true
        @mem << payload
      end
      @frame = payload
      @frame_start = @received
      @received += payload.bytesize
    end
  end

  # rack.errors: into stderr, which gw logs line by line.
  class ErrorStream
    def puts(*args) = $stderr.puts(*args)
    def write(str) = $stderr.write(str)
    def print(*args) = $stderr.print(*args)
    def <<(str) = write(str) && self
    def flush = $stderr.flush && self
    def close; end
  end

  def self.base_env(slots, rack3)
    env = {
      'REQUEST_METHOD' => 'GET', 'SCRIPT_NAME' => '', 'PATH_INFO' => '', 'QUERY_STRING' => '',
      'SERVER_NAME' => 'localhost', 'SERVER_PORT' => '80', 'SERVER_PROTOCOL' => 'HTTP/1.1',
      'SERVER_SOFTWARE' => 'gw', 'rack.url_scheme' => 'http', 'rack.errors' => ErrorStream.new,
      'rack.multithread' => slots > 1, 'rack.multiprocess' => true, 'rack.run_once' => false,
      'rack.hijack?' => false, # the client's socket lives in the gateway
    }
    env['rack.version'] = [1, 3].freeze unless rack3 # Rack 3.0 removed it
    env.freeze
  end

  # The raw path from REQUEST_URI when it decodes to PATH_INFO; else PATH_INFO.
  def self.rack_path_info(env)
    path_info = env['PATH_INFO']
    raw = env['REQUEST_URI']
    return path_info unless raw&.include?('%') # no escapes: the raw path is PATH_INFO or loses to it
    raw = raw.byteslice(0, raw.index('?') || raw.bytesize)
    raw = raw.sub(%r{\A[A-Za-z][A-Za-z0-9+.\-]*://[^/]*}n, '') unless raw.start_with?('/') # absolute-form
    script_name = env['SCRIPT_NAME']
    return path_info unless raw.start_with?(script_name)
    raw = raw.byteslice(script_name.bytesize..)
    return path_info if raw == path_info || !raw.include?('%')
    raw.gsub(/%(\h\h)/n) { Regexp.last_match(1).hex.chr } == path_info ? raw : path_info
  end

  # REQUEST_HEAD -> its HEAD_FIELDS (nil if absent), read in place as the gateway
  # sends them; the generic decoder (a Hash) takes any other layout.
  def self.decode_head(payload)
    pos, blk, pairs, scheme, rid, raw = 0 # the rest nil
    while pos < payload.bytesize
      key = payload.getbyte(pos)
      if key == 0x30 # raw_connection: an upgrade request's socket
        raw, pos = Codec.uvarint(payload, pos + 1)
        next
      end
      return Codec.decode_message(REQUEST_HEAD, payload).values_at(*HEAD_FIELDS) unless key & 7 == 2 && key.between?(10, 34)
      len = payload.getbyte(pos + 1) or raise ProtocolError, 'truncated message'
      if len < 0x80 then pos += 2
      elsif (hi = payload.getbyte(pos + 2) || 0x80) < 0x80 then len, pos = len & 0x7F | hi << 7, pos + 3 # env_block's
      else len, pos = Codec.uvarint(payload, pos + 1)
      end
      raise ProtocolError, 'length-delimited field overruns the message' if pos + len > payload.bytesize
      data = payload.byteslice(pos, len)
      pos += len
      case key
      when 0x22 then blk = data
      when 0x0a then (pairs ||= []) << data
      when 0x12 then scheme = data.force_encoding(Encoding::UTF_8)
      else rid = data.force_encoding(Encoding::UTF_8)
      end
    end
    [blk, pairs, scheme, rid, raw]
  end

  def self.build_env(base, payload, reader, raw_channel = nil)
    blk, pairs, scheme, rid, raw = decode_head(payload)
    env = base.dup
    if blk && !blk.empty?
      nuls = blk.count(NUL)
      raise ProtocolError, "env_block holds #{nuls + 1} items, not name/value pairs" if nuls.even?
      items = blk.unpack(ZSTRINGS[nuls + 1]) # in C, the reason env_block exists (faster than split)
      i = 0
      while i < items.size
        env[items[i]] = items[i + 1]
        i += 2
      end
    end
    pairs&.each_slice(2) { |name, value| env[name] = value if value }
    env.delete('CONTENT_TYPE') if env['CONTENT_TYPE']&.empty?
    length = (cl = env['CONTENT_LENGTH'])&.match?(DIGITS) ? cl.to_i : nil
    env.delete('CONTENT_LENGTH') unless length # empty or garbage: the body runs to REQUEST_END
    env['rack.url_scheme'] = scheme if scheme && !scheme.empty?
    env['gw.request_id'] = rid if rid && !rid.empty?
    path_info = rack_path_info(env)
    env['PATH_INFO'] = path_info.empty? && env['SCRIPT_NAME'].empty? ? '/' : path_info
    host = env['SERVER_NAME']
    env['SERVER_NAME'] = host = "[#{host}]" if host.include?(':') && !host.start_with?('[') # IPv6 literal
    unless env.key?('HTTP_HOST')
      port = env['SERVER_PORT']
      default = env['rack.url_scheme'] == 'https' ? '443' : '80'
      env['HTTP_HOST'] = port == default ? host : "#{host}:#{port}"
    end
    env['rack.response_finished'] = []
    env['rack.input'] = Input.new(reader, length, reader.empty_end?)
    offer_hijack(env, raw_channel.take(raw)) if raw && raw != 0 && raw_channel
    env
  end

  # -------------------------------------------------------------------------
  # Raw connections (gw docs/design/websocket.md): an upgrade request's
  # client connection, as a socket the app may take (rack.hijack)
  # -------------------------------------------------------------------------

  # The session channel: gw sends each upgrade request's socket here
  # (RAW_CONNECT, then one byte carrying it) before the request's head goes
  # on its slot. One thread reads it; slot threads take their socket by id.
  class RawChannel
    def initialize(sock)
      @sock = sock
      @fds = {}
      @lock = Mutex.new
      @arrived = ConditionVariable.new
      @write_lock = Mutex.new
    end

    def start
      Thread.new do
        Thread.current.name = 'gw-raw-channel'
        loop do
          header = read_exact(8) or break
          ftype, _, _, length = header.unpack('CCvV')
          raise ProtocolError, "session channel: frame type #{ftype}" unless ftype == RAW_CONNECT && length == 4
          id = read_exact(4)&.unpack1('V') or break
          io = socket_for(id, @sock.recv_io(nil)) # the byte after the frame carries it
          io.binmode
          io.sync = true
          @lock.synchronize do
            @fds[id] = io
            @arrived.broadcast
          end
        end
      rescue ProtocolError => e
        GwRack.fatal(EXIT_PROTOCOL, e.message)
      rescue IOError, SystemCallError
        nil # gw closed the channel: the runner is being stopped
      end
    end

    # The socket as the app gets it: a socketpair end (gw relays), or the
    # client's TCP socket itself (the handover: gw is out of the path and
    # waits for RAW_CLOSED to count the connection as ended).
    def socket_for(id, fd)
      probe = BasicSocket.for_fd(fd)
      probe.autoclose = false
      return UNIXSocket.for_fd(fd) if Addrinfo.new(probe.getsockname).unix?

      io = HandedSocket.for_fd(fd)
      io.gw_raw(self, id)
      io
    end

    # RAW_CLOSED for id: any thread may close a socket, so writes are locked.
    def closed(id)
      frame = [RAW_CLOSED, 0, 0, 4, id].pack('CCvVV')
      @write_lock.synchronize { @sock.syswrite(frame) }
    rescue IOError, SystemCallError
      nil # gw is gone
    end

    # Exact reads (sysread, never IO's buffer): a buffered read could take
    # the byte that carries the next socket, and the socket with it.
    def read_exact(n)
      buf = String.new(capacity: n)
      while buf.bytesize < n
        buf << @sock.sysread(n - buf.bytesize)
      end
      buf
    rescue EOFError
      nil
    end

    # The socket for id: it was sent before the head that names it.
    def take(id)
      @lock.synchronize do
        deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + 10
        until (io = @fds.delete(id))
          left = deadline - Process.clock_gettime(Process::CLOCK_MONOTONIC)
          raise ProtocolError, "raw connection #{id} never arrived" if left <= 0
          @arrived.wait(@lock, left)
        end
        io
      end
    end
  end

  # A client's TCP socket handed over by gw: closing it (the app, an
  # unused one after the response, EventMachine's unbind) tells gw, which
  # holds a descriptor of it until then to cut it at shutdown.
  class HandedSocket < TCPSocket
    def gw_raw(channel, id)
      @gw_channel = channel
      @gw_id = id
    end

    def close
      super
    ensure
      channel, @gw_channel = @gw_channel, nil
      channel&.closed(@gw_id)
    end
  end

  # Rack's hijack API on env for the socket io: full hijack through
  # env['rack.hijack'] (the app owns io from then on), partial through a
  # rack.hijack response header (handle_request).
  def self.offer_hijack(env, io)
    env['rack.hijack?'] = true
    env['gw.raw_io'] = io
    env['rack.hijack'] = lambda do
      # After the response the slot carries other requests: too late.
      raise IOError, 'rack.hijack called after the response' if env['gw.done']
      unless env['gw.hijacked']
        env['gw.raw_slot'].call # RAW_HIJACKED: gw relays from now on
        env['gw.hijacked'] = true
        env['rack.hijack_io'] = io
      end
      io
    end
  end

  def self.status_line(code)
    reason = defined?(Rack::Utils::HTTP_STATUS_CODES) && Rack::Utils::HTTP_STATUS_CODES[code]
    "HTTP/1.1 #{code} #{reason || 'Unknown'}\r\n"
  end

  # A partial hijack: the head goes onto the socket, then the app's callable
  # gets it.
  def self.partial_hijack(env, status, headers, callable)
    io = env['rack.hijack'].call
    head = +status_line(status.to_i)
    headers.each do |name, value|
      next if name.to_s.start_with?('rack.')
      Array(value.is_a?(Array) ? value : value.to_s.split("\n")).each { |v| head << "#{name}: #{v}\r\n" }
    end
    io.write(head << "\r\n")
    callable.call(io)
  end

  # Status, headers and body of one request, as frames gathered in one String:
  # one write(2) for an Array body, one per chunk of a streamed one.
  class Response
    attr_reader :broken, :out # out: for the selftest

    def initialize(sock)
      @sock = sock
      @out = @content_length = nil # @out: frames not yet written, the head first once valid
      @on_wire = @broken = false   # some frame was sent; the slot socket failed
    end

    # Checks the app's status and headers and encodes RESPONSE_HEAD
    # (field 1 status, field 3 header_block: name NUL value NUL ...).
    def start(status, headers)
      code = status.is_a?(Integer) ? status : status.to_s[/\A\d{3}(?!\d)/]&.to_i # Rack 2 takes status.to_i: "200"
      raise ArgumentError, "invalid status #{status.inspect}: want an Integer 100..999" unless code&.between?(100, 999)
      items = []
      headers.each do |name, value|
        kind = HEADER_NAMES[name] || header_name(name = name.to_s)
        next if kind == :skip
        if value.is_a?(Array) # Rack 3: one line per element
          value.each { |v| items << name << v.to_s }
        elsif (value = value.to_s).include?("\n") # Rack 2: one line per "\n"-separated value
          Codec.bin(value).split("\n").each { |v| items << name << v }
        else
          items << name << value
          @content_length = value.to_i if kind == :length && value.match?(DIGITS)
        end
      end
      # pack copies bytes whatever their encoding; one check covers every value.
      blk = items.pack(ZSTRINGS[items.size])
      if blk.match?(BAD_BLOCK) || blk.count(NUL) != items.size
        name, value = items.each_slice(2).find { |_, v| Codec.bin(v).match?(BAD_VALUE) }
        raise ArgumentError, "invalid response header #{name}: #{Codec.bin(value).inspect}"
      end
      blk.chop! # the last NUL
      size = blk.bytesize
      length = (code < 0x80 ? 2 : 3) + (size.zero? ? 0 : 1 + (size.bit_length + 6) / 7 + size) # tags, varints, block
      raise ArgumentError, "response headers of #{size} bytes exceed 16 MiB" if length > MAX_PAYLOAD
      @out = Codec.put_varint([RESPONSE_HEAD, 0, 0, length].pack(HEADER) << 8, code)
      Codec.put_varint(@out << 0x1a, size) << blk unless size.zero?
    end

    # A header name's kind, checked once per name: rack.hijack and friends are not headers.
    def header_name(name)
      name = Codec.bin(name)
      kind = name.start_with?('rack.') ? :skip : name.casecmp?('content-length') ? :length : :ok
      raise ArgumentError, "invalid response header name #{name.inspect}" unless kind == :skip || name.match?(TOKEN)
      HEADER_NAMES.size < 1000 ? HEADER_NAMES[name] = kind : kind
    end

    # Adds the frames of one body chunk to the output; big ones are written now.
    def queue(chunk)
      raise TypeError, "response body chunks must be Strings, not #{chunk.class}" unless chunk.is_a?(String)
      return if (size = chunk.bytesize).zero?
      return @out << [RESPONSE_BODY, 0, 0, size, chunk].pack('CCvVa*') if size <= COPY_CHUNK # any encoding
      (0...size).step(MAX_BODY_FRAME) do |off|
        part = chunk.byteslice(off, MAX_BODY_FRAME)
        @out << [RESPONSE_BODY, 0, 0, part.bytesize].pack(HEADER)
        flush(part)
      end
    end

    # Writes the output (and extra, uncopied) in one write(2).
    def flush(extra = nil)
      raise GatewayGone, 'slot socket is broken' if @broken
      return if @out.empty? && extra.nil?
      extra ? @sock.write(@out, extra) : @sock.write(@out)
      @out.clear
      @on_wire = true
    rescue IOError, SystemCallError => e
      @broken = true
      raise GatewayGone, "slot socket: #{e.message}"
    end

    # Sends the body: an Array in one write with RESPONSE_END; other bodies
    # chunk by chunk as they come, without delay.
    def send_body(body, input)
      if body.respond_to?(:to_ary) && (ary = body.to_ary).is_a?(Array)
        ary.each do |chunk|
          queue(chunk)
          flush if @out.bytesize >= MAX_BODY_FRAME
        end
      elsif (path = file_path(body))
        send_file(path)
      elsif body.respond_to?(:each)
        body.each do |chunk|
          queue(chunk)
          flush
        end
      elsif body.respond_to?(:call) # Rack 3 streaming body
        body.call(Stream.new(self, input))
      else
        raise TypeError, "response body #{body.class} responds to neither each nor call"
      end
    end

    def finish = (@out << RESPONSE_END_OK) && flush

    # RESPONSE_END{error}; nothing else if nothing was sent (the gateway answers 500).
    def fail(message)
      @out = String.new unless @on_wire
      @out << Codec.message_frame(RESPONSE_END, error: message)
      flush
    end

    private

    # A to_path body is read from its file, unless it is not the whole file
    # (a Range response) as Content-Length tells.
    def file_path(body)
      return nil unless @content_length && body.respond_to?(:to_path) && body.respond_to?(:each)
      path = body.to_path
      path if path && File.file?(path) && File.size(path) == @content_length
    end

    def send_file(path)
      left = @content_length
      File.open(path, 'rb') do |f|
        while left.positive? && (data = f.read([FILE_BLOCK, left].min))
          left -= data.bytesize
          queue(data)
          flush
        end
      end
    end
  end

  # The stream a Rack 3 streaming body (body.call(stream)) writes to. Each
  # write goes out at once; read reads the request body.
  class Stream
    def initialize(resp, input)
      @resp = resp
      @input = input
      @closed = false
    end

    def write(data)
      raise IOError, 'closed stream' if @closed
      @resp.queue(data = data.to_s)
      @resp.flush
      data.bytesize
    end

    def <<(data) = write(data) && self

    def flush # sends the head even before any body (server-sent events)
      raise IOError, 'closed stream' if @closed
      @resp.flush
      self
    end

    def read(*args) = @input.read(*args)
    def close = (@closed = true) && nil
    def close_write = close
    def close_read; end
    def closed? = @closed
  end

  def self.log_app_error(exc, env)
    id = env['gw.request_id'] ? " (id #{env['gw.request_id']})" : ''
    $stderr.write("gw_rack: request #{env['REQUEST_METHOD']} #{env['SCRIPT_NAME']}#{env['PATH_INFO']}#{id} failed:\n" \
                  "#{exc.full_message(highlight: false, order: :top)}")
  end

  # Serves one request whose REQUEST_HEAD payload was read; returns false
  # when the slot is unusable afterwards (EOF or a broken socket).
  def self.handle_request(app, sock, reader, base, payload, raw_channel = nil)
    env = build_env(base, payload, reader, raw_channel)
    input = env['rack.input']
    resp = Response.new(sock)
    status = headers = body = error = nil
    env['gw.raw_slot'] = -> { sock.write(RAW_HIJACKED_FRAME) } if env['rack.hijack?']
    begin
      status, headers, body = app.call(env)
      callable = !env['gw.hijacked'] && env['rack.hijack?'] && headers && (headers['rack.hijack'] || headers['Rack.hijack'])
      partial_hijack(env, status, headers, callable) if callable
      if env['gw.hijacked'] # the response is the app's, on the socket
        sock.write(RESPONSE_END_OK)
        return input.drain
      end
      resp.start(status, headers)
      # HEAD: the body is closed (finish_request), never iterated or
      # called, as Rack::Head does; Rack::Lint raises for a HEAD body that is.
      resp.send_body(body, input) unless env['REQUEST_METHOD'] == 'HEAD'
      resp.finish
    rescue GatewayGone => e
      error = e
    rescue Exception => e # rubocop:disable Lint/RescueException -- SystemExit and ScriptError from the app too
      error = e
      unless resp.broken
        log_app_error(e, env)
        begin; resp.fail(exc_line(e)); rescue GatewayGone; end # rubocop:disable Style/Semicolon
      end
      exit_if_out_of_memory(e)
    ensure
      finish_request(env, body, status, headers, error)
      env['gw.done'] = true
      (io = env['gw.raw_io']) && !env['gw.hijacked'] && !io.closed? && io.close
    end
    !resp.broken && input.drain
  end

  # Closes the body (always, even after errors) and runs the
  # rack.response_finished callbacks in reverse order.
  def self.finish_request(env, body, status, headers, error)
    begin
      body.close if body.respond_to?(:close)
    rescue Exception => e # rubocop:disable Lint/RescueException
      log_app_error(e, env)
    end
    env['rack.response_finished']&.reverse_each do |callback|
      callback.call(env, error ? nil : status, error ? nil : headers, error)
    rescue Exception => e # rubocop:disable Lint/RescueException
      log_app_error(e, env)
    end
  end

  # -------------------------------------------------------------------------
  # (6) Slot loop: one thread per slot socket, one request at a time
  # -------------------------------------------------------------------------

  # Serves requests on one slot until the gateway closes it (then returns).
  # counts: [requests done, busy], for PONG; only this thread writes them.
  # rio and wio: the request pipe and the response pipe, or one socket twice.
  def self.serve_slot(rio, wio, app, base, counts, raw_channel = nil)
    reader = FrameReader.new(rio)
    loop do
      ftype, payload = reader.read_frame
      return if ftype.nil?
      next if ftype == CLIENT_GONE # never sent to this runner; a stray one must not end the slot
      fatal(EXIT_PROTOCOL, "slot: expected REQUEST_HEAD, got frame type #{ftype}") if ftype != REQUEST_HEAD
      counts[1] = true
      begin
        more = handle_request(app, wio, reader, base, payload, raw_channel)
      ensure
        counts[1] = false # before the count: a PONG never shows the request done and busy
        counts[0] += 1
      end
      return unless more
    end
  rescue ProtocolError => e
    fatal(EXIT_PROTOCOL, "slot: #{e.message}")
  rescue Exception => e # rubocop:disable Lint/RescueException -- a shim bug: log it and close the slot, never hang it
    $stderr.write("gw_rack: slot thread failed:\n#{e.full_message(highlight: false, order: :top)}")
  ensure
    [rio, wio].each { |io| io.close unless io.closed? }
  end

  # rack.early_hints, as Puma's: call(headers) sends a 103 with them
  # before the answer (EARLY_HINTS; gw drops one that comes too late).
  # A value is a String (lines joined by "\n", as Rails sends several
  # Links) or an Array of them. One per slot, in the slot's base env.
  class EarlyHints
    def initialize(sock) = @sock = sock

    def call(headers)
      flat = []
      headers.each_pair do |name, values|
        name = name.to_s.b
        raise ArgumentError, "early hint name #{name.inspect} is not a token" unless TOKEN.match?(name)
        values = values.split("\n") if values.is_a?(String)
        Array(values).each do |v|
          v = v.to_s.b
          raise ArgumentError, "early hint #{name} holds a control character" if BAD_VALUE.match?(v)
          flat << name << v
        end
      end
      @sock.write(Codec.message_frame(EARLY_HINTS, { headers: flat })) unless flat.empty?
      nil
    rescue IOError, SystemCallError => e
      raise GatewayGone, "slot socket: #{e.message}"
    end
  end

  # slots: [rio, wio] per slot (open_slot).
  def self.start_slots(slots, app, stats, name, rack3, raw_channel = nil)
    shared = base_env(slots.size, rack3)
    slots.each_with_index do |(rio, wio), i|
      base = shared.merge('rack.early_hints' => EarlyHints.new(wio)).freeze
      # The process ends when the owner watcher calls exit!.
      Thread.new do
        Thread.current.name = "#{name}-slot-#{i}"
        serve_slot(rio, wio, app, base, stats[i], raw_channel)
      end
    end
  end

  # -------------------------------------------------------------------------
  # (7) Control: PING -> PONG
  # -------------------------------------------------------------------------

  # Handles one control frame; frame types this shim does not know are ignored.
  def self.answer_control(control, ftype, payload, stats)
    return unless ftype == PING
    seq = Codec.decode_message(PING, payload)[:seq]
    control.write(Codec.message_frame(PONG, seq: seq, requests: stats.sum(&:first), busy: stats.count(&:last)))
  end

  # -------------------------------------------------------------------------
  # (8) Owner watcher: EOF on the control socket (or SIGTERM) ends the process
  # -------------------------------------------------------------------------

  def self.exit_now(status)
    [$stdout, $stderr].each { |io| begin; io.flush; rescue StandardError; end } # rubocop:disable Style/Semicolon
    exit!(status)
  end

  # Runs the control loop until the gateway goes away; never returns.
  def self.watch_owner(control, stats)
    reader = FrameReader.new(control)
    while (frame = reader.read_frame)
      answer_control(control, *frame, stats)
    end
  rescue ProtocolError => e
    fatal(EXIT_PROTOCOL, "control: #{e.message}")
  rescue Exception # rubocop:disable Lint/RescueException -- EOF, a broken socket: the owner is gone
    nil
  ensure
    exit_now(0)
  end

  def self.install_signal_handlers
    %w[TERM INT].each { |sig| Signal.trap(sig) { exit_now(0) } }
    # The gateway's slowlog: every thread's backtrace to stderr (its log).
    # Trap handlers may not take locks, so a helper thread writes them.
    Signal.trap('USR1') do
      Thread.new do
        Thread.list.each do |t|
          next if t == Thread.current
          $stderr.write("gw_rack: thread #{t.name || t.object_id} (#{t.status}):\n  " +
                        (t.backtrace || ['(no backtrace)']).join("\n  ") + "\n")
        end
        $stderr.flush
      end
    end
  end

  # -------------------------------------------------------------------------
  # (9) main
  # -------------------------------------------------------------------------

  def self.open_socket(fd, klass = Socket)
    sock = klass.for_fd(fd)
    sock.binmode
    sock.nonblock = false    # an inherited fd may be O_NONBLOCK; blocking reads are cheaper
    sock.close_on_exec = true # children the app spawns must not hold the gateway's sockets
    sock.sync = true
    sock
  end

  # A slot's [rio, wio]: its two pipes, or one socket for both. gw uses
  # pipes: each has a wait queue per direction, so gw reading a response
  # never wakes this slot's thread idle in read on the request pipe, as
  # reading a socketpair does (gw issue 14). A write to a pipe gw closed
  # raises Errno::EPIPE, as on a socket: Ruby ignores SIGPIPE.
  def self.open_slot(spec)
    return [open_socket(spec[0], IO), open_socket(spec[1], IO)] if spec.is_a?(Array)
    sock = open_socket(spec)
    [sock, sock]
  end

  # Reports exc as LOAD_ERROR on the control socket and stderr, then exits 4.
  def self.fail_load(control, argv, stage, exc)
    detail = exc_report(exc)
    $stderr.write(detail)
    begin
      control ||= (fd = control_fd_hint(argv)) && open_socket(fd)
      control&.write(Codec.message_frame(LOAD_ERROR, stage: stage, message: exc_line(exc), detail: detail))
    rescue StandardError
      nil # no control socket: stderr and the exit status tell
    end
    exit_now(EXIT_LOAD)
  end

  def self.main(argv)
    control = nil
    stage = 'args'
    $stdout.sync = true # like python -u: gw reads stdout line by line
    install_signal_handlers
    begin
      opts = parse_args(argv)
      return selftest(opts[:selftest]) if opts[:selftest]
      control = open_socket(opts[:control_fd])
      slots = opts[:slot_fds].map { |spec| open_slot(spec) }
      Dir.chdir(opts[:dir]) if opts[:dir]
      path = File.expand_path(opts[:app]) # relative to DIR when given
      Dir.chdir(File.dirname(path)) unless opts[:dir]
      stage = 'import'
      app = load_app(path)
      rack3 = Rack.release.to_i >= 3
    rescue Exception => e # rubocop:disable Lint/RescueException -- SystemExit and ScriptError from the app too
      fail_load(control, argv, stage, e)
    end
    stats = Array.new(slots.size) { [0, false] } # per slot: no lock per request
    raw_channel = opts[:session_fd] && RawChannel.new(open_socket(opts[:session_fd], UNIXSocket)).tap(&:start)
    start_slots(slots, app, stats, opts[:name] || 'gw', rack3, raw_channel)
    begin
      control.write(Codec.message_frame(READY, protocol: PROTOCOL_VERSION, pid: Process.pid,
                                               runtime: "#{RUBY_ENGINE} #{RUBY_VERSION}", slots: slots.size,
                                               raw: !raw_channel.nil?, raw_socket: !raw_channel.nil?))
    rescue IOError, SystemCallError
      exit_now(0) # the gateway is already gone
    end
    watch_owner(control, stats)
  end
end

exit(GwRack.main(ARGV)) if $PROGRAM_NAME == __FILE__
