# rack.early_hints as Rails calls it: one "link" value, Links joined by "\n".
run lambda { |env|
  hints = env['rack.early_hints']
  return [500, { 'content-type' => 'text/plain' }, ['no rack.early_hints']] unless hints

  hints.call('link' => "</style.css>; rel=preload; as=style\n</app.js>; rel=preload; as=script")
  [200, { 'content-type' => 'text/plain' }, ['hinted']]
}
