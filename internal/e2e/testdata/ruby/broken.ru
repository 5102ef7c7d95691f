app = lambda do |env|
  [200, {}, ['never']]
run app
