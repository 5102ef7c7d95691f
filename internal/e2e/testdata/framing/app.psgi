# PSGI app of the hostile framing suite (hostile_framing_test.go). /chunked
# streams its own chunked framing through the writer, as Mojolicious'
# write_chunk does under PSGI.
use strict;
use warnings;

my %routes = (
    '/ok' => sub { [200, ['Content-Type' => 'text/plain'], ['ok']] },
    '/long' => sub { [200, ['Content-Length' => 5], ['hello', ' world']] },
    '/short' => sub { [200, ['Content-Length' => 20], ['hello']] },
    '/chunked' => sub {
        sub {
            my $w = shift->([200, ['Transfer-Encoding' => 'chunked']]);
            $w->write("5\r\nhello\r\n");
            $w->write("6\r\n world\r\n");
            $w->write("0\r\n\r\n");
            $w->close;
        };
    },
    '/early' => sub { [103, ['Link' => '</a.css>'], []] },
    '/switch' => sub { [101, ['Upgrade' => 'websocket'], []] },
    '/head' => sub { [200, ['Content-Length' => 5], ['hello']] },
);

sub {
    my $env = shift;
    return ($routes{$env->{PATH_INFO}} || $routes{'/ok'})->();
};
