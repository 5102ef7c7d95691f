x = ENV.fetch('NOT_SET_ANYWHERE', nil)
raise ArgumentError, 'config missing: DATABASE_URL' if x.nil?
run ->(_env) { [200, {}, []] }
