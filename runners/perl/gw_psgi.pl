#!/usr/bin/perl
# gw_psgi: the gw runner shim that hosts one PSGI 1.1 application.
#
# gw starts it once per worker process:
#
#     perl gw_psgi.pl --app PATH/app.psgi [--dir DIR] [--name NAME]
#                     --control-fd 3 --slot-fds 4:5
#
# and talks to it over the bridge protocol (proto/bridge.proto, the authority
# for framing and messages). The slot is a pipe pair R:W (gw's form: requests
# in on R, responses out on W) or one socket N (the test harnesses' form). Perl has no usable threads, so a Perl runner
# serves exactly one slot: between requests one select() loop watches the
# control socket (PING -> PONG; EOF -> exit at once) and the slot socket.
# While a request runs nothing reads the control socket; a write that finds
# the gateway gone (EPIPE) ends the process, and the control socket is looked
# at again as soon as the request finishes.
#
#     perl gw_psgi.pl --selftest DIR
#
# checks the frame codec against golden frames (NAME.bin + NAME.json).
#
# Sections, in the order every gw shim uses: (1) constants; (2) frame codec;
# (3) argv; (4) app loading; (5) per-request adapter; (6) slot loop;
# (7) control; (8) owner watcher; (9) main. Core modules only, perl 5.36.
use strict;
use warnings;
use Errno qw(EINTR);
use Fcntl qw(F_SETFD FD_CLOEXEC);
use IO::Handle ();
use POSIX ();
use overload ();
use Scalar::Util qw(blessed);

# ---------------------------------------------------------------------------
# (1) Constants and protocol version
# ---------------------------------------------------------------------------

use constant {
    PROTOCOL_VERSION => 2,
    # FrameType (bridge.proto).
    REQUEST_HEAD => 1, REQUEST_BODY => 2, REQUEST_END => 3,
    RESPONSE_HEAD => 4, RESPONSE_BODY => 5, RESPONSE_END => 6,
    READY => 16, LOAD_ERROR => 17, PING => 18, PONG => 19,
    RAW_CONNECT => 12, RAW_HIJACKED => 13,  # session channel; slot (raw connections)
    RAW_CLOSED => 23,   # session channel, to gw: a handed-over client socket is closed
    CLIENT_GONE => 14,  # gateway -> runner (slot): for ASGI runners; discarded here
    EARLY_HINTS => 15,  # runner -> gateway (slot): PSGI has no early hints; in the schema for the selftest

    MAX_PAYLOAD    => 16 << 20,  # bridge.proto: at most 16 MiB per frame
    MAX_BODY_FRAME => 1 << 20,   # app chunks are split into frames this big
    READ_BUFFER    => 64 << 10,  # sysread size of the buffered readers
    COALESCE       => 64 << 10,  # smaller body chunks are copied into one write
    FLUSH_AT       => 256 << 10, # ...until this much is pending
    INPUT_MEMORY   => 1 << 20,   # psgi.input spills to a temp file past this
    FILE_BLOCK     => 64 << 10,  # $/ while reading getline bodies

    EXIT_PROTOCOL => 3,  # a slot or control stream is desynced
    EXIT_LOAD     => 4,  # LOAD_ERROR was sent: the app cannot be loaded

    # Field kinds of the flat schema; kinds >= STR are length-delimited.
    U32 => 0, U64 => 1, BOOL => 2, STR => 3, BYTES => 4, REP => 5,
};
use constant RESPONSE_END_OK => pack('CCvV', RESPONSE_END, 0, 0, 0);
use constant REQUEST_END_OK => pack('CCvV', REQUEST_END, 0, 0, 0);
use constant USAGE =>
    "usage: gw_psgi.pl --app FILE.psgi [--dir DIR] [--name NAME] --control-fd FD --slot-fds R:W|FD\n"
  . "       gw_psgi.pl --selftest DIR\n";

my %OPTIONS = map { $_ => 1 } qw(app callable dir name control-fd slot-fds session-fd selftest);

# Every message in bridge.proto: frame type -> [number, name, kind] in field order.
my %SCHEMAS = (
    REQUEST_HEAD,  [[1, 'env', REP], [2, 'url_scheme', STR], [3, 'request_id', STR], [4, 'env_block', BYTES],
                   [5, 'websocket_session', U32], [6, 'raw_connection', U32]],
    REQUEST_END,   [[1, 'aborted', BOOL], [2, 'reason', STR]],
    RESPONSE_HEAD, [[1, 'status', U32], [2, 'headers', REP], [3, 'header_block', BYTES]],
    RESPONSE_END,  [[1, 'error', STR], [2, 'logvars', REP]],  # logvars: uWSGI's, unused here
    READY,         [[1, 'protocol', U32], [2, 'pid', U32], [3, 'runtime', STR], [4, 'slots', U32],
                   [5, 'websocket', BOOL], [6, 'raw', BOOL], [7, 'client_gone', BOOL],
                   [8, 'raw_socket', BOOL], [9, 'ws_socket', BOOL]],
    EARLY_HINTS,   [[2, 'headers', REP]],
    CLIENT_GONE,   [],
    LOAD_ERROR,    [[1, 'stage', STR], [2, 'message', STR], [3, 'detail', STR]],
    PING,          [[1, 'seq', U64]],
    PONG,          [[1, 'seq', U64], [2, 'requests', U64], [3, 'busy', U32]],
    20,            [],  # RELOAD_APP, CACHE_*: uWSGI's API in gw_wsgi.py; never sent here
    21,            [[1, 'op', U32], [2, 'key', BYTES], [3, 'value', BYTES], [4, 'expires', U64]],
    22,            [[1, 'ok', BOOL], [2, 'value', BYTES]],
);
# frame type -> {tag (number << 3 | the wire type its kind uses) => [name, kind]}
my %DECODE_TAGS = map {
    my $t = $_;
    ($t => { map { ($_->[0] << 3 | ($_->[2] >= STR ? 2 : 0)) => [$_->[1], $_->[2]] } @{$SCHEMAS{$t}} });
} keys %SCHEMAS;

# ---------------------------------------------------------------------------
# (2) Frame codec: 8-byte header + payload; hand-written proto3 for the flat
#     messages (canonical encoding: field-number order, defaults omitted).
#     Strings stay byte strings on both sides.
# ---------------------------------------------------------------------------

sub varint {
    my $v = shift;
    return chr $v if $v < 0x80 && $v >= 0;
    die "negative varint $v\n" if $v < 0;
    my $out = '';
    while ($v >= 0x80) { $out .= chr(($v & 0x7F) | 0x80); $v >>= 7 }
    return $out . chr $v;
}

# Decodes the varint at byte $_[1] of $_[0]; returns (value, next position).
sub uvarint {
    my $pos = $_[1];
    my ($value, $shift, $end) = (0, 0, length $_[0]);
    while (1) {
        die "truncated message\n" if $pos >= $end;
        my $b = ord substr($_[0], $pos++, 1);
        $value |= ($b & 0x7F) << $shift if $shift < 64;
        return ($value, $pos) if $b < 0x80;
        die "varint longer than 10 bytes\n" if ($shift += 7) >= 70;
    }
}

# A STRING field's value as valid UTF-8 (Go rejects anything else): character
# strings are encoded, byte strings that already are UTF-8 kept, other bytes
# read as Latin-1; surrogates and code points past U+10FFFF become U+FFFD.
sub utf8_bytes {
    my $s = shift;
    return $s unless $s =~ /[^\x00-\x7F]/;
    utf8::decode($s) unless utf8::is_utf8($s);
    $s =~ s/[^\x{0}-\x{D7FF}\x{E000}-\x{10FFFF}]/\x{FFFD}/g;
    utf8::encode($s);
    return $s;
}

sub encode_message {
    my ($type, $msg) = @_;
    my $out = '';
    for my $field (@{$SCHEMAS{$type}}) {
        my ($num, $name, $kind) = @$field;
        my $v = $msg->{$name};
        if ($kind == REP) {
            for my $item (@{$v || []}) {
                die "$name: wide character\n" if utf8::is_utf8($item) && !utf8::downgrade(my $copy = $item, 1);
                $out .= chr($num << 3 | 2) . (length $item < 0x80 ? chr length $item : varint(length $item)) . $item;
            }
        } elsif ($kind >= STR) {
            next unless defined $v && length $v;
            $v = utf8_bytes($v) if $kind == STR;
            $out .= chr($num << 3 | 2) . varint(length $v) . $v;
        } elsif ($v) {
            $v = 1 if $kind == BOOL;
            die "$name=$v out of range\n" if $kind == U32 && $v > 0xFFFFFFFF;
            $out .= chr($num << 3) . varint($v);
        }
    }
    return $out;
}

# Decodes a proto3 payload into a hash holding every field (defaults filled
# in). Unknown fields, and known ones with an unexpected wire type, are
# skipped by wire type (0, 1, 2, 5), as proto3 requires.
sub decode_message {
    my $type = $_[0];
    my $tags = $DECODE_TAGS{$type} or die "frame type $type carries no message\n";
    my %msg = map { ($_->[1] => $_->[2] == REP ? [] : $_->[2] >= STR ? '' : 0) } @{$SCHEMAS{$type}};
    my ($pos, $end) = (0, length $_[1]);
    while ($pos < $end) {
        my $key = ord substr($_[1], $pos, 1);
        if ($key < 0x80) { $pos++ } else { ($key, $pos) = uvarint($_[1], $pos) }
        die "field number 0\n" if $key < 8;
        my ($wire, $field) = ($key & 7, $tags->{$key});
        if ($wire == 2) {
            my $size = $pos < $end ? ord substr($_[1], $pos, 1) : 0x80;
            if ($size < 0x80) { $pos++ } else { ($size, $pos) = uvarint($_[1], $pos) }
            die "length-delimited field overruns the message\n" if $pos + $size > $end;
            push @{$msg{$field->[0]}}, substr($_[1], $pos, $size) if $field && $field->[1] == REP;
            $msg{$field->[0]} = substr($_[1], $pos, $size) if $field && $field->[1] != REP;
            $pos += $size;
        } elsif ($wire == 0) {
            my $value;
            ($value, $pos) = uvarint($_[1], $pos);
            next unless $field;
            my $kind = $field->[1];
            $msg{$field->[0]} = $kind == BOOL ? ($value ? 1 : 0) : $kind == U32 ? $value & 0xFFFFFFFF : $value;
        } elsif ($wire == 1 || $wire == 5) {
            $pos += $wire == 1 ? 8 : 4;
        } else {
            die "unsupported wire type $wire\n";
        }
    }
    die "truncated message\n" if $pos > $end;
    return \%msg;
}

# REQUEST_HEAD as the gateway writes it (fields 1-4, lengths below 16 KiB)
# without the generic decoder: (env items, url_scheme, request_id, env_block).
sub decode_head {
    my ($pos, $end, @env) = (0, length $_[0]);
    my ($scheme, $rid, $blk, $raw) = ('', '', '', 0);
    while ($pos < $end) {
        my ($key, $size, $hi) = unpack("\@$pos CCC", $_[0]);
        if ($key == 0x30) {  # raw_connection: an upgrade request's socket
            ($raw, $pos) = uvarint($_[0], $pos + 1);
            next;
        }
        if (($size // 0x80) < 0x80) { $pos += 2 }
        elsif (($hi // 0x80) < 0x80) { $size = $size & 0x7F | $hi << 7; $pos += 3 }
        else { last }
        last if ($key & 7) != 2 || $key < 8 || $key > 0x22 || $pos + $size > $end;  # fields 1-4, wire type 2
        ($key == 0x22 ? $blk : $key == 0x12 ? $scheme : $key == 0x1A ? $rid : $env[@env]) = substr($_[0], $pos, $size);
        $pos += $size;
    }
    ($scheme, $rid, $blk, $raw, @env) = map { ref($_) ? @$_ : $_ }
        @{decode_message(REQUEST_HEAD, $_[0])}{qw(url_scheme request_id env_block raw_connection env)} if $pos != $end;
    # name NUL value NUL ... name NUL value: an odd number of NULs.
    die "an odd number of env items\n" if @env % 2 || length $blk && !(($blk =~ tr/\0//) & 1);
    return (\@env, $scheme, $rid, $blk, $raw);
}

sub encode_frame {
    die sprintf("frame payload of %d bytes exceeds 16 MiB\n", length $_[1]) if length $_[1] > MAX_PAYLOAD;
    return pack('CCvV', $_[0], 0, 0, length $_[1]) . $_[1];
}

sub message_frame { encode_frame($_[0], encode_message(@_)) }

# A buffered reader over one socket or pipe: sysread 64 KiB at a time, parse
# by offset. wfh: where answers go (the response pipe; else fh itself).
sub new_reader {
    my ($fh, $name, $wfh) = @_;
    return { fh => $fh, wfh => $wfh // $fh, fd => fileno($fh), name => $name, buf => '', pos => 0 };
}

sub has_frame {
    my $r = shift;
    my $have = length($r->{buf}) - $r->{pos};
    return $have >= 8 && $have >= 8 + unpack('V', substr($r->{buf}, $r->{pos} + 4, 4));
}

# Makes at least $need unread bytes available; false at EOF (or a read error:
# either way the gateway is gone).
sub fill {
    my ($r, $need) = @_;
    my $have = length($r->{buf}) - $r->{pos};
    if ($r->{pos}) {
        if ($have) { substr($r->{buf}, 0, $r->{pos}, '') } else { $r->{buf} = '' }
        $r->{pos} = 0;
    }
    while ($have < $need) {
        my $want = $need - $have > READ_BUFFER ? $need - $have : READ_BUFFER;
        my $n = sysread($r->{fh}, $r->{buf}, $want, $have);
        next if !defined $n && $! == EINTR;
        return 0 unless $n;
        $have += $n;
    }
    return 1;
}

# Reads one frame; returns (type, payload), or () when the stream ended.
sub read_frame {
    my $r = shift;
    return if length($r->{buf}) - $r->{pos} < 8 && !fill($r, 8);
    my ($type, undef, undef, $len) = unpack('CCvV', substr($r->{buf}, $r->{pos}, 8));
    fatal(EXIT_PROTOCOL, "$r->{name}: frame of $len bytes exceeds 16 MiB") if $len > MAX_PAYLOAD;
    return if length($r->{buf}) - $r->{pos} < 8 + $len && !fill($r, 8 + $len);
    my $payload = $len ? substr($r->{buf}, $r->{pos} + 8, $len) : '';
    $r->{pos} += 8 + $len;
    return ($type, $payload);
}

# decode_message for a frame the gateway sent: a bad one desyncs the stream.
sub decode_from {
    my ($r, $type) = @_;
    my $msg = eval { decode_message($type, $_[2]) };
    fatal(EXIT_PROTOCOL, "$r->{name}: frame type $type: $@") unless $msg;
    return $msg;
}

# Writes $_[1] (or $_[3] bytes of it from offset $_[2]) to socket $_[0],
# finishing short writes. A failed write means the gateway is gone.
sub write_all {
    my $fh = $_[0];
    my $off = $_[2] // 0;
    my $end = defined $_[3] ? $off + $_[3] : length $_[1];
    while ($off < $end) {
        my $n = syswrite($fh, $_[1], $end - $off, $off);
        next if !defined $n && $! == EINTR;
        fatal(0, "write to the gateway failed ($!): exiting") unless defined $n;
        $off += $n;
    }
}

sub selftest {
    my ($dir) = @_;
    require JSON::PP;
    my %names;
    opendir(my $dh, $dir) or die "cannot open $dir: $!\n";
    /\A(.+)\.(?:bin|json)\z/s and $names{$1} = 1 for readdir $dh;
    my ($failed, $skipped) = (0, 0);
    for my $name (sort keys %names) {
        my $why = eval { golden_skip(slurp("$dir/$name.json")) };
        if ($why) {
            $skipped++;
            print "SKIP $name: $why\n";
            next;
        }
        my @problems = eval { check_golden(slurp("$dir/$name.json"), slurp("$dir/$name.bin")) };
        @problems = (first_line($@)) if $@;
        next unless @problems;
        $failed++;
        print "FAIL $name: ", join('; ', @problems), "\n";
    }
    print "$skipped skipped\n" if $skipped;
    printf "%d passed, %d failed\n", keys(%names) - $failed - $skipped, $failed;
    return $failed ? 1 : 0;
}

# WS_CONNECT .. WS_CLOSE (7..11): WebSocket sessions on the session channel.
# gw sends them only to a runner whose READY says websocket (ASGI, uWSGI's
# API in gw_wsgi.py); a PSGI app does WebSockets over psgix.io (raw
# connections), so this shim never encodes or decodes one.
sub golden_skip {
    my $case = JSON::PP->new->utf8->decode($_[0]);
    my $type = $case->{type};
    return 'WebSocket session frames: READY websocket is never set here (PSGI uses raw connections)'
        if $type >= 7 && $type <= 11;
    return 'RAW_CLOSED with message counts: ASGI handed-over WebSockets only'
        if $type == RAW_CLOSED && length($case->{body} // '');
    return undef;
}

# RAW_CONNECT, RAW_HIJACKED, RAW_CLOSED: raw payloads (an id) or none,
# checked against what take_raw reads, raw_closed writes and raw_response
# writes (that one inline: the same pack as here).
sub check_raw_golden {
    my ($case, $frame) = @_;
    my ($type, $id, @problems) = ($case->{type}, $case->{id});
    push @problems, 'unexpected body or fields'
        if length($case->{body} // '') || %{ $case->{fields} || {} };
    if ($type == RAW_CONNECT) {  # take_raw's check, then its id
        my ($t, undef, undef, $len) = unpack('CCvV', $frame);
        push @problems, "take_raw would refuse header type $t length $len"
            unless $t == RAW_CONNECT && $len == 4 && length $frame == 12;
        my $got = unpack('V', substr($frame, 8, 4));
        push @problems, "decode: id $got, want $id" if $got != $id;
    } elsif ($type == RAW_CLOSED) {  # raw_closed writes it to the session channel
        my $out = selftest_raw_closed($id);
        push @problems, sprintf('encode: raw_closed wrote %s, want %s', unpack('H*', $out), unpack('H*', $frame))
            if $out ne $frame;
    } else {  # RAW_HIJACKED: empty
        my $f = pack('CCvV', RAW_HIJACKED, 0, 0, 0);
        push @problems, sprintf('encode: %s, want %s', unpack('H*', $f), unpack('H*', $frame)) if $f ne $frame;
    }
    return @problems;
}

sub slurp {
    open(my $fh, '<:raw', $_[0]) or die "$_[0]: $!\n";
    local $/;
    return scalar <$fh>;
}

sub check_golden {
    my ($json, $frame) = @_;
    my $case = JSON::PP->new->utf8->decode($json);
    my $type = $case->{type};
    return check_raw_golden($case, $frame) if $type == RAW_CONNECT || $type == RAW_HIJACKED || $type == RAW_CLOSED;
    my $is_body = $type == REQUEST_BODY || $type == RESPONSE_BODY;
    my ($want, $payload, @problems);
    if ($is_body) {
        $want = $payload = latin1($case->{body} // '');
    } else {
        $want = json_message($type, $case->{fields} || {});
        $payload = encode_message($type, $want);
    }
    my $header = join ',', unpack('CCvV', $frame);
    my $expected = join ',', $type, 0, 0, length($frame) - 8;
    push @problems, "header (type, flags, reserved, length) $header, want $expected" if $header ne $expected;
    if ($is_body) {
        push @problems, 'decode: body differs' if substr($frame, 8) ne $want;
    } else {
        my ($got, %h) = decode_message($type, substr($frame, 8));
        if ($type == REQUEST_HEAD) {
            @h{qw(env url_scheme request_id env_block raw_connection)} = decode_head(substr($frame, 8));
            $h{websocket_session} = $got->{websocket_session};  # only the generic decoder reads it
        }
        for my $name (sort keys %$want) {  # both decoders of a request head
            my ($g, $w, $f) = map { ref $_ ? join(',', map { unpack 'H*', $_ } @$_) : $_ } $got->{$name}, $want->{$name}, $h{$name};
            push @problems, "decode: $name = $g, want $w" if $g ne $w;
            push @problems, "decode_head: $name = $f, want $w" if $type == REQUEST_HEAD && $f ne $w;
        }
    }
    my $resp = { pending => '' };  # the response path's own encoder
    queue_head($resp, $want->{status}, [split /\0/, $want->{header_block}, -1]) if $type == RESPONSE_HEAD && !@{$want->{headers}};
    push @problems, 'queue_head: frame differs' if length $resp->{pending} && $resp->{pending} ne $frame;
    my $encoded = encode_frame($type, $payload);
    if ($encoded ne $frame && !$case->{decode_only}) {  # decode_only: non-canonical input
        my $at = 0;
        $at++ while $at < length $frame && substr($encoded, $at, 1) eq substr($frame, $at, 1);
        push @problems, sprintf('encode: differs at byte %d: got %s, want %s', $at,
                                map { unpack 'H*', substr($_, $at, 16) } $encoded, $frame);
    }
    return @problems;
}

# JSON strings carry one byte per character (U+0000..U+00FF).
sub latin1 {
    my $s = shift;
    utf8::downgrade($s, 1) or die "JSON string has a character past U+00FF\n";
    return $s;
}

# Golden JSON fields -> message hash; protojson's lowerCamelCase names too.
sub json_message {
    my ($type, $fields) = @_;
    my $schema = $SCHEMAS{$type} or die "unknown frame type $type\n";
    my (%msg, %seen);
    for my $f (@$schema) {
        my ($name, $kind) = @$f[1, 2];
        (my $camel = $name) =~ s/_(\w)/\u$1/g;
        @seen{$name, $camel} = ();
        my $v = $fields->{$name} // $fields->{$camel};
        $msg{$name} = $kind == REP ? [map { latin1($_) } @{$v || []}]
                    : $kind >= STR ? latin1($v // '')
                    : $kind == BOOL ? ($v ? 1 : 0) : 0 + ($v // 0);  # uint64 may be a string
    }
    my @unknown = grep { !exists $seen{$_} } sort keys %$fields;
    die "unknown fields @unknown\n" if @unknown;
    return \%msg;
}

# ---------------------------------------------------------------------------
# (3) argv parsing
# ---------------------------------------------------------------------------

# --opt VALUE / --opt=VALUE pairs -> {name => value}; dies with a usage error.
sub parse_args {
    my @argv = @_;
    my %opts;
    while (@argv) {
        my $arg = shift @argv;
        print(USAGE), exit 0 if $arg eq '-h' || $arg eq '--help';
        my ($name, $value) = $arg =~ /\A--([a-z-]+)(?:=(.*))?\z/s;
        die "unknown argument '$arg'\n" unless defined $name && $OPTIONS{$name};
        if (!defined $value) {
            die "--$name needs a value\n" unless @argv;
            $value = shift @argv;
        }
        $opts{$name} = $value;
    }
    return \%opts if defined $opts{selftest};
    die "--app is required\n" unless length($opts{app} // '');
    die "--control-fd FD and --slot-fds R:W|FD[,...] are required\n"
        unless ($opts{'control-fd'} // '') =~ /\A\d+\z/
        && ($opts{'slot-fds'} // '') =~ /\A\d+(?::\d+)?(?:,\d+(?::\d+)?)*\z/;
    my @fds = ($opts{'control-fd'}, split /[,:]/, $opts{'slot-fds'});
    my %distinct = map { ($_ + 0) => 1 } @fds;
    die "file descriptors must be distinct: @fds\n" if keys %distinct != @fds;
    # Per slot: [R, W] (pipes) or [N] (a socket).
    $opts{slots} = [map { [map { $_ + 0 } split /:/] } split /,/, $opts{'slot-fds'}];
    return \%opts;
}

# The --control-fd value when the rest of argv could not be parsed.
sub control_fd_hint {
    for my $i (0 .. $#_) {
        return $1 if $_[$i] =~ /\A--control-fd=(\d+)\z/;
        return $_[$i + 1] if $_[$i] eq '--control-fd' && $i < $#_ && $_[$i + 1] =~ /\A\d+\z/;
    }
    return undef;
}

# An inherited socket fd as a blocking, close-on-exec handle.
sub adopt_fd {
    my ($fd, $what) = @_;
    open(my $fh, '+<&=', $fd) or die "$what fd $fd: $!\n";
    binmode $fh;
    $fh->blocking(1);  # an inherited fd may still be O_NONBLOCK
    fcntl($fh, F_SETFD, FD_CLOEXEC);
    return $fh;
}

# ---------------------------------------------------------------------------
# (4) App loading
# ---------------------------------------------------------------------------

# Loads FILE as Plack::Util::load_psgi does: `do FILE` in a package of its
# own, with $0 = FILE (FindBin) and @ARGV empty; the file's last expression
# is the app. Dies with {stage, message, detail} when that fails.
sub load_app {
    my ($file) = @_;
    (my $package = $file) =~ s/([^A-Za-z0-9_])/sprintf('_%02x', ord $1)/eg;
    local $0 = $file;
    @ARGV = ();
    my $app = eval sprintf(<<'CODE', $package);
package GW::Sandbox::%s;
my $app = do $file;
die($@ || "cannot read $file: $!\n") if !$app && ($@ || $!);
$app;
CODE
    if (my $err = $@) {
        die { stage => 'import', message => first_line($err), detail => "$err" };
    }
    my $ok = ref $app eq 'CODE' || (blessed($app) && overload::Method($app, '&{}'));
    return $app if $ok;
    my $what = !defined $app ? 'undef' : ref $app ? 'a ' . ref($app) . ' reference' : "the value '$app'";
    my $message = "$file returned $what, not a PSGI application (a code reference)";
    die { stage => 'callable', message => $message, detail => "$message\n" };
}

# One line naming an error: its first line, trimmed.
sub first_line {
    my ($line) = "$_[0]" =~ /\A\s*([^\n]*)/;
    $line =~ s/\s+\z//;
    return length $line ? $line : 'unknown error';
}

# ---------------------------------------------------------------------------
# (5) Per-request adapter: env, psgi.input, responses, writer
# ---------------------------------------------------------------------------

sub fatal {
    my ($status, $message) = @_;
    chomp $message;
    print STDERR "gw_psgi: $message\n";
    exit_now($status);
}

{
    # psgi.input: the body read lazily from REQUEST_BODY frames up to
    # REQUEST_END, kept in memory up to INPUT_MEMORY and in an unlinked temp
    # file past that, so seek works (psgix.input.buffered). Reads never go past
    # CONTENT_LENGTH. When the body was aborted, the read that finds no more
    # data dies with "request body aborted: REASON" instead of returning 0.
    package GW::Input;

    # Reads the next frame of the request stream; false once it has ended.
    sub _pull {
        my $self = shift;
        return 0 if $self->{ended};
        my ($type, $payload) = main::read_frame($self->{slot});
        unless (defined $type) {  # the gateway closed the slot mid-request
            @$self{qw(ended slot_eof error)} = (1, 1, 'gateway closed the slot');
            return 0;
        }
        if ($type == main::REQUEST_END) {
            my $end = main::decode_from($self->{slot}, $type, $payload);
            $self->{ended} = 1;
            $self->{error} = length $end->{reason} ? $end->{reason} : 'aborted' if $end->{aborted};
            return 0;
        }
        main::fatal(main::EXIT_PROTOCOL, "slot: frame type $type inside a request body")
            if $type != main::REQUEST_BODY;
        $self->_store($payload) unless $self->{discard};
        return 1;
    }

    sub _store {
        my $self = shift;
        my $n = length $_[0];
        $n = $self->{limit} - $self->{size} if defined $self->{limit} && $self->{size} + $n > $self->{limit};
        return if $n <= 0;
        if (!$self->{fh} && $self->{size} + $n > main::INPUT_MEMORY) {
            require File::Temp;
            $self->{fh} = File::Temp::tempfile();  # scalar context: already unlinked
            binmode $self->{fh};
            _write_file($self->{fh}, $self->{mem});
            $self->{mem} = '';
        }
        if ($self->{fh}) {
            sysseek($self->{fh}, $self->{size}, Fcntl::SEEK_SET) or die "psgi.input: temp file: $!\n";
            _write_file($self->{fh}, $n == length $_[0] ? $_[0] : substr($_[0], 0, $n));
        } else {
            $self->{mem} .= $n == length $_[0] ? $_[0] : substr($_[0], 0, $n);
        }
        $self->{size} += $n;
    }

    sub _write_file {
        my ($fh, $off) = ($_[0], 0);
        while ($off < length $_[1]) {
            my $n = syswrite($fh, $_[1], length($_[1]) - $off, $off);
            die "psgi.input: temp file: $!\n" unless defined $n || $! == Errno::EINTR;
            $off += $n // 0;
        }
    }

    sub _fill { my ($self, $upto) = @_; 1 while $self->{size} < $upto && $self->_pull }

    sub _slice {
        my ($self, $pos, $n) = @_;
        return substr($self->{mem}, $pos, $n) unless $self->{fh};
        sysseek($self->{fh}, $pos, Fcntl::SEEK_SET) or die "psgi.input: temp file: $!\n";
        my $data = '';
        while (length $data < $n) {
            my $got = sysread($self->{fh}, $data, $n - length $data, length $data);
            die "psgi.input: temp file: $!\n" unless $got || (!defined $got && $! == Errno::EINTR);
        }
        return $data;
    }

    # read($buf, $len [, $offset]), like the builtin read: bytes read, 0 at EOF.
    sub read {
        my $self = $_[0];
        my ($len, $off) = ($_[2] // 0, $_[3] // 0);
        my $pos = $self->{pos};
        my $end = $pos + ($len > 0 ? $len : 0);
        $end = $self->{limit} if defined $self->{limit} && $end > $self->{limit};
        $self->_fill($end) if $end > $self->{size};
        $end = $self->{size} if $end > $self->{size};
        my $data = '';
        if ($end > $pos) {
            $data = $self->_slice($pos, $end - $pos);
            $self->{pos} = $end;
        } elsif ($len > 0 && defined $self->{error} && !(defined $self->{limit} && $pos >= $self->{limit})) {
            die "request body aborted: $self->{error}\n";
        }
        $_[1] = '' unless defined $_[1];
        if (!$off) {
            $_[1] = $data;
        } else {
            $off += length $_[1] if $off < 0;
            die "psgi.input: read offset outside the string\n" if $off < 0;
            $_[1] .= "\0" x ($off - length $_[1]) if $off > length $_[1];
            substr($_[1], $off, length($_[1]) - $off, $data);
        }
        return length $data;
    }

    sub seek {
        my ($self, $pos, $whence) = @_;
        $whence //= 0;
        return 0 if $whence !~ /\A[012]\z/;
        $self->_fill(9**9**9) if $whence == 2;  # the end: the whole body
        $pos += $whence == 1 ? $self->{pos} : $whence == 2 ? $self->{size} : 0;
        return 0 if $pos < 0;
        $self->{pos} = $pos;  # past what arrived: the next read fetches up to it
        return 1;
    }

    sub tell { $_[0]{pos} }
    sub close { 1 }  # PSGI: the server owns the stream

    # Frees the buffer and discards the rest of the request stream; false if
    # the slot hit EOF.
    sub finish {
        my $self = shift;
        CORE::close($self->{fh}) if $self->{fh};
        @$self{qw(fh mem discard)} = (undef, '', 1);
        1 while !$self->{ended} && $self->_pull;
        return !$self->{slot_eof};
    }
}

{
    # The writer a streaming response gets: write($bytes) sends a frame now.
    package GW::Writer;

    sub write {
        my $resp = $_[0]{resp};
        die "writer: write() after close()\n" if $resp->{done};
        main::add_body($resp, $_[1]);
        main::flush($resp);
        return 1;
    }

    sub close {
        my $resp = $_[0]{resp};
        main::finish($resp, '') unless $resp->{done};
        return 1;
    }
}

# For a CGI key the gateway did not send (it always sends these).
my %CGI_DEFAULTS = (REQUEST_METHOD => 'GET', SCRIPT_NAME => '', PATH_INFO => '', QUERY_STRING => '',
                    SERVER_NAME => 'localhost', SERVER_PORT => '80', SERVER_PROTOCOL => 'HTTP/1.1');

# The PSGI env for one REQUEST_HEAD payload ($_[1]; values: byte strings).
sub build_env {
    my $slot = $_[0];
    my ($pairs, $scheme, $rid, $blk, $raw) = eval { decode_head($_[1]) };
    fatal(EXIT_PROTOCOL, "slot: frame type 1: $@") unless $pairs;
    # The defaults first: later pairs win (the gateway sends no undef values).
    my %env = (%CGI_DEFAULTS, @$pairs, split(/\0/, $blk, -1), 'psgi.version' => [1, 1], 'psgi.errors' => \*STDERR,
               'psgi.url_scheme' => length $scheme ? $scheme : 'http', 'psgi.multithread' => '',
               'psgi.multiprocess' => 1, 'psgi.run_once' => '', 'psgi.nonblocking' => '', 'psgi.streaming' => 1,
               'psgix.input.buffered' => 1, 'psgix.cleanup' => 1, 'psgix.cleanup.handlers' => [],
               'psgix.harakiri' => 1, length $rid ? ('gw.request_id' => $rid) : ());
    $env{SCRIPT_NAME} = '' if $env{SCRIPT_NAME} eq '/';
    $env{PATH_INFO} = "/$env{PATH_INFO}" if length $env{PATH_INFO} && $env{PATH_INFO} !~ m{\A/};
    if (!defined $env{REQUEST_URI}) {
        ($env{REQUEST_URI} = $env{SCRIPT_NAME} . $env{PATH_INFO}) =~ s{([^A-Za-z0-9/._~!\$&'()*+,;=:@-])}{sprintf '%%%02X', ord $1}eg;
        $env{REQUEST_URI} .= "?$env{QUERY_STRING}" if length $env{QUERY_STRING};
    }
    delete @env{qw(HTTP_CONTENT_TYPE HTTP_CONTENT_LENGTH)};
    delete $env{CONTENT_TYPE} if defined $env{CONTENT_TYPE} && !length $env{CONTENT_TYPE};
    delete $env{CONTENT_LENGTH} if defined $env{CONTENT_LENGTH} && $env{CONTENT_LENGTH} !~ /\A[0-9]+\z/;
    $env{'psgi.input'} = bless { slot => $slot, limit => $env{CONTENT_LENGTH}, mem => '', size => 0, pos => 0 }, 'GW::Input';
    # No body, and its REQUEST_END came with the head: the stream is read.
    $env{'psgi.input'}{ended} = 1, $slot->{pos} += 8 if substr($slot->{buf}, $slot->{pos}, 8) eq REQUEST_END_OK;
    ($env{'psgix.io'}, $env{'gw.raw_tcp'}) = take_raw($raw) if $raw;
    return \%env;
}

# ---------------------------------------------------------------------------
# Raw connections (gw docs/design/websocket.md): an upgrade request's client
# connection as psgix.io
# ---------------------------------------------------------------------------

my $RAW_CHANNEL;  # the session channel (--session-fd); undef: no raw connections
my %RAW_FDS;      # connection id -> fd, received ahead of their request

# Exactly $n bytes from the session channel (sysread: a buffered read could
# take the byte that carries the next socket, and the socket with it).
sub raw_read {
    my $n = shift;
    my $buf = '';
    while (length $buf < $n) {
        my $got = sysread($RAW_CHANNEL, $buf, $n - length $buf, length $buf);
        next if !defined $got && $! == EINTR;
        fatal(0, 'session channel closed: exiting') unless $got;
    }
    return $buf;
}

# The socket of connection $id: gw sent it (RAW_CONNECT, then one byte that
# carries it) before the head naming it, so reading in order finds it.
sub take_raw {
    my $id = shift;
    fatal(EXIT_PROTOCOL, 'slot: a raw connection without a session channel') unless $RAW_CHANNEL;
    until (exists $RAW_FDS{$id}) {
        my ($type, undef, undef, $len) = unpack('CCvV', raw_read(8));
        fatal(EXIT_PROTOCOL, "session channel: frame type $type") unless $type == RAW_CONNECT && $len == 4;
        my $got = unpack('V', raw_read(4));
        my $fd = IO::FDPass::recv(fileno $RAW_CHANNEL);
        fatal(EXIT_PROTOCOL, "session channel: no socket for raw connection $got: $!") if $fd < 0;
        $RAW_FDS{$got} = $fd;
    }
    my $fd = delete $RAW_FDS{$id};
    # A socketpair end (gw relays), or the client's TCP socket itself (the
    # handover: gw waits for RAW_CLOSED, sent once the request closed it).
    my $tcp = do {
        open(my $probe, '+<&', $fd) or fatal(1, "raw connection $id: $!");
        my $name = getsockname($probe);
        $name && Socket::sockaddr_family($name) != Socket::AF_UNIX();
    };
    my $io = ($tcp ? 'IO::Socket::INET' : 'IO::Socket::UNIX')->new_from_fd($fd, '+<')
        or fatal(1, "raw connection $id: $!");
    binmode $io;
    $io->autoflush(1);
    $io->blocking(1) if $tcp;  # gw's descriptor was non-blocking; gw does no I/O on it any more
    return ($io, $tcp ? $id : 0);
}

# RAW_CLOSED for a handed-over socket: gw counts the connection until then.
sub raw_closed {
    my $id = shift;
    my $f = pack('CCvVV', RAW_CLOSED, 0, 0, 4, $id);
    syswrite($RAW_CHANNEL, $f) == length $f or fatal(0, "session channel: $!: exiting");
}

# What raw_closed writes for $id, for the selftest (here: it needs $RAW_CHANNEL).
sub selftest_raw_closed {
    my $id = shift;
    pipe(my $r, my $w) or die "pipe: $!\n";
    my $saved = $RAW_CHANNEL;
    $RAW_CHANNEL = $w;
    raw_closed($id);
    $RAW_CHANNEL = $saved;
    close $w;
    return do { local $/; <$r> } // '';
}

# An upgrade request's answer when the app did not take psgix.io: written
# onto the connection as HTTP/1.1 (gw relays it since RAW_HIJACKED), then
# the connection closes.
sub raw_head {
    my ($io, $status, $headers) = @_;
    my $head = "HTTP/1.1 $status " . (eval { require HTTP::Status; HTTP::Status::status_message($status) } // 'Unknown') . "\r\n";
    for (my $i = 0; $i < @$headers; $i += 2) {
        $head .= "$headers->[$i]: $headers->[$i + 1]\r\n" unless lc $headers->[$i] eq 'connection';
    }
    syswrite($io, $head . "Connection: close\r\n\r\n");
}

sub raw_response {
    my ($app, $env, $resp) = @_;
    my $io = $env->{'psgix.io'};
    # The relay starts before the app runs: a Perl app serves its
    # connection inside the request (there is no other thread to do it).
    write_all($resp->{fh}, pack('CCvV', RAW_HIJACKED, 0, 0, 0));
    my $res = $app->($env);
    my $send = sub {
        my $r = shift;
        raw_head($io, $r->[0], $r->[1]);
        return bless { io => $io }, 'GW::RawWriter' if @$r == 2;
        my $body = $r->[2];
        if (ref $body eq 'ARRAY') { syswrite($io, $_) for grep { defined } @$body }
        else { local $/ = \FILE_BLOCK; while (defined(my $c = $body->getline)) { syswrite($io, $c) } $body->close }
        return;
    };
    if (ref $res eq 'ARRAY') { $send->($res) }
    elsif (ref $res eq 'CODE') { $res->($send) }  # a responder never called: the app spoke on psgix.io itself
}

{
    package GW::RawWriter;
    sub write { syswrite($_[0]{io}, $_[1]); 1 }
    sub close { 1 }
}

my %STATUS_FIELD;  # status -> its encoded ResponseHead.status field
my %HEADER_BLOCKS; # header blocks the regex passed: an app sends the same few (profiled: the regex was the head's main cost)

# Whether a NUL-joined header block is name NUL value pairs of RFC 9110
# tokens and values without CTLs but HTAB; remembered for small blocks.
sub header_block_ok {
    return 0 unless $_[0] =~ /\A(?:[!#\$%&'*+\-.^_`|~0-9A-Za-z]+\0[^\x00-\x08\x0A-\x1F\x7F]*(?:\0|\z))+\z/;
    $HEADER_BLOCKS{$_[0]} = 1 if keys %HEADER_BLOCKS < 1000 && length $_[0] < 1024;
    return 1;
}

# Validates status and headers and queues the RESPONSE_HEAD frame: headers in
# one NUL-joined block checked by one regex; the loop only names a culprit.
sub queue_head {
    my ($resp, $status, $headers) = @_;
    my $head = defined $status && !ref $status && $STATUS_FIELD{$status} || do {
        die sprintf("invalid response status '%s': want a number from 100 to 999\n", $status // 'undef')
            unless defined $status && !ref $status && $status =~ /\A[1-9][0-9]{2}\z/;
        $STATUS_FIELD{$status} = "\x08" . varint($status);
    };
    die "response headers must be an array reference of name => value pairs\n"
        unless ref $headers eq 'ARRAY' && @$headers % 2 == 0;
    my $blk = '';
    if (@$headers && (grep(!defined, @$headers) || ($blk = join "\0", @$headers) =~ tr/\0// != $#$headers
                      || !utf8::downgrade($blk, 1) || !($HEADER_BLOCKS{$blk} || header_block_ok($blk)))) {
        for (my $i = 0; $i < @$headers; $i += 2) {
            my ($name, $value) = @$headers[$i, $i + 1];
            die sprintf("response header %s has an undefined %s\n", $name // 'undef', defined $name ? 'value' : 'name')
                unless defined $name && defined $value;
            ($name, $value) = ("$name", "$value");
            die "invalid response header name '$name'\n" unless $name =~ /\A[!#\$%&'*+\-.^_`|~0-9A-Za-z]+\z/;
            die "invalid response header value for $name (wide character)\n" unless utf8::downgrade($value, 1);
            die "invalid response header value for $name (control character)\n" if $value =~ /[\x00-\x08\x0A-\x1F\x7F]/;
        }
        die "invalid response headers\n";  # not reached: the loop names the culprit
    }
    $head .= "\x1a" . varint(length $blk) . $blk if length $blk;
    $resp->{pending} .= pack('CCvV', RESPONSE_HEAD, 0, 0, length $head) . $head;
}

# Queues one body chunk ($_[1]) as RESPONSE_BODY frames. Small chunks are
# copied into the pending write; big ones go to the socket straight from the
# app's string.
sub add_body {
    my $resp = $_[0];
    return if !defined $_[1] || $resp->{head_only};
    my $chunk = \$_[1];
    if (ref $$chunk) {
        die sprintf("response body chunk is a %s reference, not a byte string\n", ref $$chunk)
            unless blessed($$chunk) && overload::Method($$chunk, '""');
        $chunk = \"$$chunk";
    }
    if (utf8::is_utf8($$chunk)) {
        my $copy = $$chunk;
        die "wide character in the response body (encode it to bytes)\n" unless utf8::downgrade($copy, 1);
        $chunk = \$copy;
    }
    my $size = length $$chunk or return;
    if ($size < COALESCE) {
        $resp->{pending} .= pack('CCvV', RESPONSE_BODY, 0, 0, $size) . $$chunk;
        flush($resp) if length $resp->{pending} >= FLUSH_AT;
        return;
    }
    for (my $off = 0; $off < $size; $off += MAX_BODY_FRAME) {
        my $n = $size - $off < MAX_BODY_FRAME ? $size - $off : MAX_BODY_FRAME;
        $resp->{pending} .= pack('CCvV', RESPONSE_BODY, 0, 0, $n);
        flush($resp);
        write_all($resp->{fh}, $$chunk, $off, $n);
    }
}

sub flush {
    my $resp = shift;
    return unless length $resp->{pending};
    my $n = syswrite($resp->{fh}, $resp->{pending});  # usually all of it: no write_all call
    write_all($resp->{fh}, $resp->{pending}, $n // 0) if ($n // 0) < length $resp->{pending};
    $resp->{pending} = '';
    $resp->{wire} = 1;
}

# Sends RESPONSE_END (after the queued head and body, or alone on an error
# when nothing reached the gateway yet: it answers 500 then).
sub finish {
    my ($resp, $error) = @_;
    $resp->{pending} = '' if $error && !$resp->{wire};
    $resp->{pending} .= $error ? message_frame(RESPONSE_END, { error => $error }) : RESPONSE_END_OK;
    $resp->{done} = 1;
    flush($resp);
}

# [status, headers, body]: body an array of byte strings or a handle.
sub send_response {
    my ($resp, $res) = @_;
    die "the response must be [status, headers, body]\n" unless @$res == 3;
    queue_head($resp, $res->[0], $res->[1]);
    my $body = $res->[2];
    if (ref $body eq 'ARRAY') {
        add_body($resp, $_) for @$body;
    } elsif (blessed($body) ? $body->can('getline') : ref $body eq 'GLOB' && *{$body}{IO}) {
        my $ok = eval {
            local $/ = \FILE_BLOCK;
            # HEAD: the handle is closed unread, as Plack::Middleware::Head does.
            while (!$resp->{head_only} && defined(my $chunk = $body->getline)) {
                add_body($resp, $chunk);
                flush($resp);
            }
            1;
        };
        my $err = $@;
        my $closed = eval { $body->close; 1 };  # always, even when getline died
        die $err unless $ok;
        die $@ unless $closed;
    } else {
        die sprintf("response body must be an array reference or a handle with getline and close, not %s\n",
                    ref $body ? 'a ' . ref($body) . ' reference' : defined $body ? "'$body'" : 'undef');
    }
    finish($resp, '');
}

# The responder of a delayed response: [s, h, body] finishes, [s, h] streams.
sub responder {
    my ($resp, $res) = @_;
    die "the responder was called twice\n" if $resp->{started};
    die "the responder takes [status, headers] or [status, headers, body]\n"
        unless ref $res eq 'ARRAY' && (@$res == 2 || @$res == 3);
    $resp->{started} = 1;
    return send_response($resp, $res) if @$res == 3;
    queue_head($resp, @$res);
    flush($resp);  # streaming clients see the head before the first write
    $resp->{writer} = 1;
    return bless { resp => $resp }, 'GW::Writer';
}

sub run_app {
    my ($app, $env, $resp) = @_;
    my $res = $app->($env);
    if (ref $res eq 'ARRAY') {
        $resp->{started} = 1;
        send_response($resp, $res);
    } elsif (ref $res eq 'CODE') {
        $res->(sub { responder($resp, @_) });
        die "the delayed response returned without calling the responder\n" unless $resp->{started};
        if ($resp->{writer} && !$resp->{done}) {
            log_request($env, 'returned without closing its writer; closed it');
            finish($resp, '');
        }
    } else {
        die sprintf("the application returned %s, not an array or code reference\n",
                    ref $res ? 'a ' . ref($res) . ' reference' : defined $res ? "'$res'" : 'undef');
    }
}

sub log_request {
    my ($env, $what) = @_;
    $what .= "\n" unless $what =~ /\n\z/;
    my $id = defined $env->{'gw.request_id'} ? " (id $env->{'gw.request_id'})" : '';
    print STDERR "gw_psgi: request $env->{REQUEST_METHOD} $env->{SCRIPT_NAME}$env->{PATH_INFO}$id $what";
}

# Serves one request whose REQUEST_HEAD payload was read; returns false when
# the slot is unusable afterwards (the gateway closed it).
sub handle_request {
    my ($app, $slot, $payload) = @_;
    my $env = build_env($slot, $payload);
    my $input = $env->{'psgi.input'};
    # head_only: HEAD gets no body (add_body drops it, a handle is not read).
    my $resp = { fh => $slot->{wfh}, pending => '', head_only => $env->{REQUEST_METHOD} eq 'HEAD' };
    if (!defined $env->{CONTENT_LENGTH} && !$input->{ended}) {
        # A body of unknown length (chunked) is buffered first: PSGI apps read
        # CONTENT_LENGTH bytes (Plack::Request, HTTP::Entity::Parser).
        $input->_fill(9**9**9);
        $env->{CONTENT_LENGTH} = $input->{limit} = $input->{size} if $input->{size};
        if (defined $input->{error}) {
            log_request($env, "not run: request body aborted: $input->{error}");
            finish($resp, "request body aborted: $input->{error}");
        }
    }
    if ($env->{'psgix.io'}) {
        my $ok = eval { raw_response($app, $env, $resp); 1 };
        log_request($env, "failed: $@") unless $ok;
        close $env->{'psgix.io'};  # the connection lives as long as the request
        raw_closed($env->{'gw.raw_tcp'}) if $env->{'gw.raw_tcp'};
        finish($resp, '');
    } elsif (!$resp->{done} && !eval { run_app($app, $env, $resp); 1 }) {
        my $err = $@;
        log_request($env, "failed: $err");
        finish($resp, first_line($err)) unless $resp->{done};
    }
    my $more = $input->finish;
    for my $handler (@{$env->{'psgix.cleanup.handlers'} || []}) {
        eval { $handler->($env); 1 } or log_request($env, "cleanup handler failed: $@");
    }
    if ($env->{'psgix.harakiri.commit'}) {
        log_request($env, 'committed harakiri: exiting');
        STDOUT->flush;
        exit 0;  # END blocks and destructors run; gw starts a fresh runner
    }
    return $more;
}

# ---------------------------------------------------------------------------
# (6) Slot loop: one slot, one request at a time, control checked in between
# ---------------------------------------------------------------------------

sub serve {
    my ($app, $ctl, $slot) = @_;
    my $stats = { requests => 0 };
    my ($ctl_in, $both_in) = ('', '');
    vec($ctl_in, $ctl->{fd}, 1) = vec($both_in, $ctl->{fd}, 1) = vec($both_in, $slot->{fd}, 1) = 1;
    while (1) {
        # A request already buffered (pipelined) skips the wait, but control
        # still goes first: an owner that left must not get another request.
        my $ready = $slot && length($slot->{buf}) > $slot->{pos};
        my $n = select(my $rout = $slot && !$ready ? $both_in : $ctl_in, undef, undef, $ready ? 0 : undef);
        next if $n < 0 && $! == EINTR;
        fatal(1, "select: $!") if $n < 0;
        watch_owner($ctl, $stats) if $n > 0 && vec($rout, $ctl->{fd}, 1);
        next unless $ready || ($slot && $n > 0 && vec($rout, $slot->{fd}, 1));
        my ($type, $payload) = read_frame($slot);
        $slot = undef, next unless defined $type;  # slot closed: keep answering control
        next if $type == CLIENT_GONE;  # never sent to this runner; a stray one must not end the slot
        fatal(EXIT_PROTOCOL, "slot: expected REQUEST_HEAD, got frame type $type") if $type != REQUEST_HEAD;
        my $more = handle_request($app, $slot, $payload);
        $stats->{requests}++;
        $slot = undef unless $more;
    }
}

# ---------------------------------------------------------------------------
# (7) Control: PING -> PONG
# ---------------------------------------------------------------------------

# Handles one control frame; frame types this shim does not know are ignored.
sub answer_control {
    my ($ctl, $type, $payload, $stats) = @_;
    return unless $type == PING;
    my $seq = decode_from($ctl, PING, $payload)->{seq};
    write_all($ctl->{fh}, message_frame(PONG, { seq => $seq, requests => $stats->{requests}, busy => 0 }));
}

# ---------------------------------------------------------------------------
# (8) Owner watcher: EOF on the control socket (or SIGTERM) ends the process
# ---------------------------------------------------------------------------

sub exit_now {
    eval { STDOUT->flush; STDERR->flush };
    POSIX::_exit($_[0]);
}

# Reads the control frames that are waiting (the socket was readable);
# exits at once when the gateway is gone.
sub watch_owner {
    my ($ctl, $stats) = @_;
    do {
        my ($type, $payload) = read_frame($ctl);
        exit_now(0) unless defined $type;
        answer_control($ctl, $type, $payload, $stats);
    } while (has_frame($ctl));
}

sub install_signal_handlers {
    $SIG{TERM} = $SIG{INT} = sub { exit_now(0) };
    # The gateway's slowlog: the request's Perl stack to STDERR (its log).
    # SA_RESTART so the app's reads and writes carry on after it (a sleep
    # still returns early, as for any signal).
    require Carp;
    POSIX::sigaction(POSIX::SIGUSR1(),
        POSIX::SigAction->new(sub { print STDERR Carp::longmess('gw_psgi: slow request, stack') },
                              POSIX::SigSet->new, POSIX::SA_RESTART()));
}

# ---------------------------------------------------------------------------
# (9) main
# ---------------------------------------------------------------------------

# Reports a load failure as LOAD_ERROR (and on stderr), then exits 4.
sub fail_load {
    my ($ctl, $argv, $stage, $err) = @_;
    my $report = ref $err eq 'HASH' ? $err : { stage => $stage, message => first_line($err), detail => "$err" };
    $report->{detail} .= "\n" unless $report->{detail} =~ /\n\z/;
    print STDERR $report->{detail};
    my $fd = $ctl ? undef : control_fd_hint(@$argv);
    $ctl = eval { adopt_fd($fd, 'control') } if defined $fd;
    syswrite($ctl, message_frame(LOAD_ERROR, $report)) if $ctl;
    exit_now(EXIT_LOAD);
}

sub main {
    my @argv = @_;
    my $opts = eval { parse_args(@argv) } or fail_load(undef, \@argv, 'args', $@);
    return selftest($opts->{selftest}) if defined $opts->{selftest};
    # A write to a closed socket or pipe fails with EPIPE (write_all exits
    # then; the app sees an error) instead of killing the process. A handler, not
    # 'IGNORE': programs the app runs get the default SIGPIPE back on exec.
    $SIG{PIPE} = sub {};
    STDOUT->autoflush(1);
    STDERR->autoflush(1);
    my ($ctl, $slot, $stage);
    my $app = eval {
        $stage = 'args';
        $ctl = adopt_fd($opts->{'control-fd'}, 'control');
        my ($first, @extra) = @{$opts->{slots}};
        # gw passes a pipe pair: a pipe has a wait queue per direction, so gw
        # reading a response never wakes this process idle in select on the
        # request pipe, as reading a socketpair does (gw issue 14).
        $slot = [map { adopt_fd($_, 'slot') } @$first];
        @extra = map { @$_ } @extra;
        if (@extra) {  # gw passes one; closing the rest fails their requests fast
            print STDERR "gw_psgi: a perl runner serves one slot: closing extra slot fds @extra\n";
            POSIX::close($_) for @extra;
        }
        chdir $opts->{dir} or die "cannot chdir to $opts->{dir}: $!\n" if defined $opts->{dir};
        my $file = $opts->{app} =~ m{\A/} ? $opts->{app} : POSIX::getcwd() . "/$opts->{app}";
        1 while $file =~ s{/\.?/}{/};
        (my $dir = $file) =~ s{/[^/]*\z}{};
        chdir($dir) if !defined $opts->{dir} && length $dir && -d $dir;
        unshift @INC, POSIX::getcwd() . '/lib' if -d 'lib';  # like `plackup -Ilib` in the app's dir
        $ENV{PLACK_ENV} ||= 'deployment';  # not development: no debug pages, no Lint
        $stage = 'import';
        load_app($file);
    };
    fail_load($ctl, \@argv, $stage, $@) unless $app;
    install_signal_handlers();
    if (defined $opts->{'session-fd'}) {
        if (eval { require IO::FDPass; require IO::Socket::UNIX; require IO::Socket::INET; require Socket; 1 }) {
            $RAW_CHANNEL = adopt_fd($opts->{'session-fd'}, 'session');
        } else {
            print STDERR "gw_psgi: IO::FDPass is missing (Debian: libio-fdpass-perl): no psgix.io for upgrade requests\n";
            POSIX::close($opts->{'session-fd'});
        }
    }
    write_all($ctl, message_frame(READY, { protocol => PROTOCOL_VERSION, pid => $$,
                                            runtime => sprintf('perl %vd', $^V), slots => 1, raw => $RAW_CHANNEL ? 1 : 0,
                                            raw_socket => $RAW_CHANNEL ? 1 : 0 }));
    serve($app, new_reader($ctl, 'control'), new_reader($slot->[0], 'slot', $slot->[1]));
}

exit(main(@ARGV) // 0);
