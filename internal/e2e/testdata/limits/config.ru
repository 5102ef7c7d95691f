# A Rack app that allocates past its limits.memory, for limits_test.go.
run lambda { |env|
  case env['PATH_INFO']
  when '/pid' then [200, { 'content-type' => 'text/plain' }, [Process.pid.to_s]]
  when '/alloc' then [200, { 'content-type' => 'text/plain' }, [('x' * (512 << 20)).size.to_s]]
  else [200, { 'content-type' => 'text/plain' }, ['ok']]
  end
}
