# A Protocol::WebSocket echo over psgix.io (gw's raw connections): the
# handshake and frames are the app's; gw relays bytes. The loop runs inside
# the request, as a Perl app under gw must (no other thread).
# LOG gets "eof" when the client's side ends, and "io CLASS" for the
# socket: IO::Socket::INET when gw handed the client's socket over,
# IO::Socket::UNIX when it relays (TLS).
use strict;
use warnings;
use Protocol::WebSocket::Handshake::Server;
use Protocol::WebSocket::Frame;

sub log_line {
    open(my $f, '>>', $ENV{LOG}) or return;
    print $f "$_[0]\n";
}

my $app = sub {
    my $env = shift;
    return [200, ['Content-Type' => 'text/plain'], ['psgix.io: ' . ($env->{'psgix.io'} ? 'yes' : 'no') . "\n"]]
        unless $env->{PATH_INFO} eq '/ws';
    my $fh = $env->{'psgix.io'} or return [501, [], ['no psgix.io']];
    log_line('io ' . ref $fh);
    my $hs = Protocol::WebSocket::Handshake::Server->new_from_psgi($env);
    $hs->parse('') or return [400, [], [$hs->error]];
    syswrite($fh, $hs->to_string);
    my $frame = $hs->build_frame(max_payload_size => 4 << 20);
    while (1) {
        my $n = sysread($fh, my $buf, 256 << 10);
        last unless $n;
        $frame->append($buf);
        while (defined(my $msg = $frame->next_bytes)) {
            if ($frame->is_close) {
                syswrite($fh, $hs->build_frame(type => 'close', buffer => $msg)->to_bytes);
                log_line('close');
                return sub {};
            }
            next unless $frame->is_text || $frame->is_binary;
            my $out = $hs->build_frame(type => $frame->is_text ? 'text' : 'binary', buffer => $msg,
                                       max_payload_size => 4 << 20);
            my $bytes = $out->to_bytes;
            for (my $off = 0; $off < length $bytes;) {
                my $w = syswrite($fh, $bytes, length($bytes) - $off, $off);
                last unless $w;
                $off += $w;
            }
        }
    }
    log_line('eof');
    return sub {};  # the responder is never called: the app spoke on psgix.io
};
