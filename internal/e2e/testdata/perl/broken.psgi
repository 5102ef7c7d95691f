use strict;
my $app = sub {
    return [200, ['Content-Type' => 'text/plain'], ['never']]
