use strict;
die "config missing: DATABASE_URL\n" unless $ENV{DATABASE_URL};
sub { [200, [], ['never']] };
