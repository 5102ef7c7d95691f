package GWTestLib;
# Found through the lib/ directory gw_psgi.pl adds to @INC.
use strict;
use warnings;

sub greeting { 'from lib' }

1;
