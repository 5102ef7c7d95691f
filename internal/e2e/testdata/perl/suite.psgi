# The e2e contract app (see lang_test.go), wrapped in Plack's Lint so every
# request the tests send must pass it.
use strict;
use warnings;
use Digest::SHA;
use JSON::PP ();
use Plack::Builder;
use Time::HiRes ();

my $TEXT = ['Content-Type' => 'text/plain'];

sub pattern {
    my ($size) = @_;
    my $block = join '', map { chr } 0 .. 255;
    $block x= 256;    # 64 KiB
    my ($sent, @chunks) = (0);
    return sub {
        return undef if $sent >= $size;
        my $n = $size - $sent < length $block ? $size - $sent : length $block;
        $sent += $n;
        return substr $block, 0, $n;
    };
}

my $app = sub {
    my $env  = shift;
    my $path = $env->{PATH_INFO};
    if ($path =~ m{/env\z}) {
        my %out = map { ($_ => $env->{$_}) } grep { !ref $env->{$_} } keys %$env;
        $out{'psgi.version'} = $env->{'psgi.version'};
        my $json = JSON::PP->new->canonical->encode(\%out);
        return [200, ['Content-Type' => 'application/json'], [$json]];
    }
    if ($path eq '/hash') {
        my ($sha, $n, $buf) = (Digest::SHA->new(256), 0, '');
        while (my $got = $env->{'psgi.input'}->read($buf, 65537)) {
            $sha->add($buf);
            $n += $got;
        }
        return [200, $TEXT, ["$n " . $sha->hexdigest]];
    }
    if ($path eq '/download') {
        my $size = $env->{QUERY_STRING} || 0;
        my $next = pattern($size);
        my $body = Plack::Util::inline_object(getline => $next, close => sub { });
        return [200, ['Content-Type' => 'application/octet-stream', 'Content-Length' => $size], $body];
    }
    if ($path eq '/stream') {
        return sub {
            my $writer = shift->([200, $TEXT]);
            for my $i (0 .. 2) {
                $writer->write("chunk $i\n");
                Time::HiRes::sleep(0.3);
            }
            $writer->close;
        };
    }
    if ($path eq '/sleep') {
        # A signal (gw's slowlog) cuts a sleep short: sleep the rest.
        my $until = Time::HiRes::time() + ($env->{QUERY_STRING} || 1);
        while ((my $left = $until - Time::HiRes::time()) > 0) { Time::HiRes::sleep($left) }
        return [200, $TEXT, ['slept']];
    }
    return [200, $TEXT, [$$]] if $path eq '/pid';
    return [200, $TEXT, ['ignored your body']] if $path eq '/unread';
    die "boom from the app\n" if $path eq '/error';
    return [404, $TEXT, ['no such test endpoint']];
};

builder {
    enable 'Lint';
    $app;
};
