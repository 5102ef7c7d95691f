# An app wrapped in Plack::Middleware::Lint: every request must pass it.
use strict;
use warnings;
use Plack::Builder;

my $app = sub {
    my $env = shift;
    my $input = $env->{'psgi.input'};
    if ($env->{PATH_INFO} eq '/stream') {
        return sub {
            my $writer = shift->([200, ['Content-Type' => 'text/plain']]);
            $writer->write($_) for qw(a b c);
            $writer->close;
        };
    }
    if ($env->{PATH_INFO} eq '/delayed') {
        return sub { shift->([200, ['Content-Type' => 'text/plain'], ['delayed']]) };
    }
    if ($env->{REQUEST_METHOD} eq 'POST') {
        # Pieces of 3 bytes, each appended with the offset form of read().
        my $body = '';
        my $reads = 0;
        while (my $n = $input->read($body, 3, length $body)) { $reads++ }
        $input->seek(0, 0) or die 'seek failed';
        $input->read(my $again, $env->{CONTENT_LENGTH});
        my $seek = $again eq $body ? 'seek-ok' : "seek-bad($again)";
        my $out = "ok:$body:$reads:$seek";
        return [200, ['Content-Type' => 'text/plain', 'Content-Length' => length $out], [$out]];
    }
    return [200, ['Content-Type' => 'text/plain'], ['ok:', $env->{QUERY_STRING}]];
};

builder {
    enable 'Lint';
    $app;
};
