use strict;
use warnings;
use Dancer2;

get '/' => sub { 'Hello from Dancer2' };
get '/hello/:name' => sub { 'Hello, ' . route_parameters->get('name') };
post '/form' => sub {
    my $p = body_parameters;
    return join ',', map { "$_=" . $p->get($_) } sort $p->keys;
};

to_app;
