<?php
// Streaming needs PHP's own output buffer (output_buffering=4096 in
// Debian's php.ini) out of the way, exactly as under php-fpm.
while (ob_get_level()) ob_end_flush();
header('Content-Type: text/plain');
for ($i = 0; $i < 3; $i++) {
    echo "chunk $i\n";
    flush();
    usleep(300000);
}
