# PSGI test apps for gw_psgi.pl, picked by PATH_INFO; see ../harness.py.
use strict;
use warnings;
use Digest::SHA qw(sha256_hex);
use FindBin;
use JSON::PP ();
use Time::HiRes qw(sleep);
use GWTestLib;

my %LOAD = (dollar0 => $0, findbin => $FindBin::Bin, plack_env => $ENV{PLACK_ENV},
            lib => GWTestLib::greeting(), cwd => do { require Cwd; Cwd::getcwd() },
            package => __PACKAGE__);
my $TEXT = ['Content-Type' => 'text/plain'];
my %count;  # per-process counters the harness reads back

sub text { [200, $TEXT, [@_]] }

sub read_all {
    my ($env) = @_;
    my ($data, $chunk) = ('', '');
    while ($env->{'psgi.input'}->read($chunk, 65536)) { $data .= $chunk }
    return $data;
}

sub download {  # 10 MiB, the same bytes for every call
    my $block = join '', map { pack 'N', $_ * 2654435761 % 4294967296 } 0 .. 16383;  # 64 KiB
    return $block x 160;
}

{
    package CountedBody;  # getline/close body that counts its close calls
    sub new { my ($class, $count, @parts) = @_; bless { parts => [@parts], count => $count }, $class }
    sub getline {
        my $self = shift;
        my $part = shift @{$self->{parts}};
        die "getline failed\n" if defined $part && $part eq 'DIE';
        return $part;
    }
    sub close { ${$_[0]{count}}++ }
}

my %routes = (
    '/hello' => sub { text('Hello, World!') },
    '/env' => sub {
        my $env = shift;
        my %out = map { ($_ => ref $env->{$_} ? undef : $env->{$_}) } keys %$env;
        $out{_types} = { map { ($_ => ref($env->{$_}) || 'scalar') } keys %$env };
        $out{_version} = $env->{'psgi.version'};
        my $json = JSON::PP->new->canonical->ascii->encode(\%out);
        [200, ['Content-Type' => 'application/json', 'Content-Length' => length $json], [$json]];
    },
    '/load' => sub { [200, ['Content-Type' => 'application/json'], [JSON::PP->new->canonical->encode(\%LOAD)]] },
    '/digest' => sub {
        my $env = shift;
        my $data = read_all($env);
        text(sprintf '%s %d %s', sha256_hex($data), length $data, $env->{CONTENT_LENGTH} // 'none');
    },
    '/request' => sub {  # Plack::Request reads CONTENT_LENGTH bytes after a seek
        require Plack::Request;
        my $req = Plack::Request->new(shift);
        my $content = $req->content;
        text(sprintf '%d %s %s', length $content, sha256_hex($content), join ',', map {
            "$_=" . $req->body_parameters->get($_) } sort keys %{$req->body_parameters});
    },
    '/partial' => sub { my $env = shift; $env->{'psgi.input'}->read(my $buf, 10); text($buf) },
    '/untouched' => sub { text('did not read') },
    '/download' => sub {
        my $data = download();
        [200, ['Content-Type' => 'application/octet-stream', 'X-SHA256' => sha256_hex($data)], [$data]];
    },
    '/download_fh' => sub {
        my $data = download();
        require File::Temp;
        my $fh = File::Temp::tempfile();
        print $fh $data;
        seek $fh, 0, 0;
        [200, ['Content-Type' => 'application/octet-stream', 'X-SHA256' => sha256_hex($data)], $fh];
    },
    '/echo' => sub {
        my $env = shift;
        return sub {
            my $writer = shift->([200, ['Content-Type' => 'application/octet-stream']]);
            while ($env->{'psgi.input'}->read(my $chunk, 65536)) { $writer->write($chunk) }
            $writer->close;
        };
    },
    '/stream' => sub {
        return sub {
            my $writer = shift->([200, $TEXT]);
            for my $word (qw(one two three)) {
                $writer->write($word);
                sleep 0.3 unless $word eq 'three';
            }
            $writer->close;
        };
    },
    '/delayed3' => sub { sub { shift->([201, $TEXT, ['delayed', ' body']]) } },
    '/unclosed' => sub { sub { shift->([200, $TEXT])->write('left open') } },
    '/getline' => sub { [200, $TEXT, CountedBody->new(\$count{close}, 'a', 'bb', '', 'ccc')] },
    '/getline_die' => sub { [200, $TEXT, CountedBody->new(\$count{close}, 'a', 'DIE', 'never')] },
    '/close_count' => sub { text($count{close} // 0) },
    '/cookies' => sub { [200, [@$TEXT, 'Set-Cookie' => 'a=1', 'Set-Cookie' => 'b=2', 'X-Num' => 42], ['c']] },
    '/die' => sub { die "boom before the head\n" },
    '/die_at' => sub { die 'boom with a line' },
    '/die_object' => sub { die bless({}, 'My::Error') },
    '/die_stream' => sub {
        sub { my $w = shift->([200, $TEXT]); $w->write('partial'); die "late boom\n" };
    },
    '/wide' => sub { text("caf\x{e9} \x{263a}") },
    '/latin1_upgraded' => sub { my $s = "caf\x{e9}"; utf8::upgrade($s); text($s) },
    '/bad_header' => sub { [200, ['X-Bad' => "a\r\nInjected: 1"], ['x']] },
    '/bad_name' => sub { [200, ['Bad Name' => 'v'], ['x']] },
    '/bad_status' => sub { ['abc', $TEXT, ['x']] },
    '/not_array' => sub { 'just a string' },
    '/bad_body' => sub { [200, $TEXT, 'a string body'] },
    '/no_responder' => sub { sub { 1 } },
    '/twice' => sub { sub { my $r = shift; $r->([200, $TEXT, ['one']]); $r->([200, $TEXT, ['two']]) } },
    '/write_after_close' => sub { sub { my $w = shift->([200, $TEXT]); $w->close; $w->write('x') } },
    '/errors' => sub {
        my $env = shift;
        $env->{'psgi.errors'}->print("to psgi.errors\n");
        text('logged');
    },
    '/cleanup' => sub {
        my $env = shift;
        push @{$env->{'psgix.cleanup.handlers'}}, sub {
            my $e = shift;
            $count{cleanup}++;
            print STDERR "cleanup ran for $e->{PATH_INFO}\n";
        };
        push @{$env->{'psgix.cleanup.handlers'}}, sub { die "cleanup boom\n" };
        text('cleanup queued');
    },
    '/cleanup_count' => sub { text($count{cleanup} // 0) },
    '/harakiri' => sub { my $env = shift; $env->{'psgix.harakiri.commit'} = 1; text("bye $$") },
    '/pid' => sub { text($$) },
    '/aborted' => sub {
        my $env = shift;
        my $data = eval { read_all($env) };
        text(defined $data ? sprintf('no error: %d bytes', length $data) : $@ =~ s/\n\z//r);
    },
    '/sigign' => sub { text(`grep SigIgn /proc/self/status`) },  # a child's ignored signals
    '/seek' => sub {  # seek/tell over the whole body, then offsets into it
        my $in = shift->{'psgi.input'};
        my @out;
        $in->seek(0, 2) or die 'seek end';
        push @out, $in->tell;
        $in->seek(-3, 2);
        $in->read(my $tail, 10);
        $in->seek(2, 0);
        $in->read(my $buf, 2);
        $in->seek(1, 1);
        $in->read($buf, 2, -1);   # replaces the last byte of $buf
        $in->read($buf, 1, 5);    # pads with NUL up to offset 5
        push @out, $tail, $buf, $in->tell, $in->seek(-1, 0) ? 'bad' : 'neg-refused';
        text(join '|', @out);
    },
    '/slow' => sub { sleep(shift->{QUERY_STRING} || 1); text('slept') },
);

sub {
    my $env = shift;
    my ($first) = $env->{PATH_INFO} =~ m{\A(/[^/]*)};
    my $route = $routes{$env->{PATH_INFO}} || $routes{$first // ''} || return [404, $TEXT, ['no route']];
    return $route->($env);
};
