require 'no_such_gem_anywhere'
run ->(_env) { [200, {}, []] }
