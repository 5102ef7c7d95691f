my $app = sub {
    return [200, [], ['x']]
my $broken = ;
