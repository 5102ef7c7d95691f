// Package files is the one policy for every file gw serves itself: the
// `static:` directories (--static) and the static files of a PHP document
// root. Both go through Root.Find and Root.ServeFile, so a rule added here
// holds everywhere.
//
// The policy, and whose behaviour each rule follows:
//
//   - Only GET and HEAD; anything else is 405 with Allow (nginx's static
//     module).
//   - No dotfiles or dot-directories anywhere in the path (.git/, .env,
//     .htpasswd), in the URL and in the real path behind symlinks: 403, as
//     the usual nginx `location ~ /\. { deny all; }` answers. The one
//     exception is /.well-known/ as the first segment (RFC 8615): ACME
//     http-01 challenges (RFC 8555 §8.3, certbot --webroot) and
//     security.txt (RFC 9116) live there.
//   - No backup or editor leftovers and no include files (name~, #name#,
//     .bak, .orig, .old, .save, .swp, .swo, .rej, .inc) in any segment: 403,
//     the backup part of h5bp server-configs-nginx's "sensitive files" deny
//     (`(?:#.*#|\.(?:bak|in[ci]|orig|sw[op]|...)|~)$`). An `index.php~` is
//     PHP source that no longer ends in .php, so nothing else would stop it.
//   - PHP source (.php and its variants, any case) is never served as a
//     file: 403, as php-fpm answers for security.limit_extensions. Only the
//     PHP runner runs exact .php files; nothing serves their text.
//   - Symlinks may point anywhere inside the root and nowhere outside it:
//     the real path is checked, and the file is then opened through an
//     os.Root, so a symlink swapped in after the check still cannot lead
//     out (the kernel resolves it beneath the root). 403.
//   - No directory listings: a directory without index.html is 403, as
//     nginx answers with autoindex off ("directory index ... is
//     forbidden"); a directory named without its slash is redirected to
//     it (301, as nginx does).
//   - Content-Type from a fixed built-in table (types.go), never from the
//     host's /etc/mime.types and never by sniffing the bytes: unknown or
//     missing extensions are application/octet-stream, nginx's default_type.
//     Every answer carries X-Content-Type-Options: nosniff, so a browser
//     never second-guesses it (an upload named "avatar" holding <script> is
//     a download, not a page).
//   - Malformed paths (NUL, backslash, "." or ".." segments) are 400, as
//     Go's http.FileServer answers "invalid URL path".
//
// Name-based refusals are decided before the disk is touched, so a 403
// says nothing about whether the file exists.
package files
