package files

import (
	"path"
	"strings"
)

// DefaultType is the type of a file whose extension the table does not
// know, or that has none: nginx's default_type. A browser offers it as a
// download and never renders it, so an upload with a made-up name cannot
// become a page (stored XSS).
const DefaultType = "application/octet-stream"

// types is fixed, not read from the host's /etc/mime.types as Go's mime
// package does: the same file gets the same type on every machine, and no
// local mime.types can map an upload's extension to text/html. It is the
// web part of nginx's own conf/mime.types (nginx ships its table for the
// same reason), with RFC 9239's text/javascript, and the types nginx 1.22
// lacks that browsers insist on (.mjs: module scripts need a JavaScript
// type; .webmanifest, .map, .otf, .ttf). Text types say UTF-8, as Go's
// built-in table does, so a browser does not guess the charset either.
var types = map[string]string{
	// Documents and code.
	".html":        "text/html; charset=utf-8",
	".htm":         "text/html; charset=utf-8",
	".css":         "text/css; charset=utf-8",
	".js":          "text/javascript; charset=utf-8",
	".mjs":         "text/javascript; charset=utf-8",
	".txt":         "text/plain; charset=utf-8",
	".csv":         "text/csv; charset=utf-8",
	".md":          "text/markdown; charset=utf-8",
	".xml":         "text/xml; charset=utf-8",
	".xhtml":       "application/xhtml+xml",
	".json":        "application/json",
	".map":         "application/json",
	".atom":        "application/atom+xml",
	".rss":         "application/rss+xml",
	".pdf":         "application/pdf",
	".wasm":        "application/wasm",
	".webmanifest": "application/manifest+json",

	// Images.
	".avif": "image/avif",
	".bmp":  "image/bmp",
	".gif":  "image/gif",
	".ico":  "image/x-icon",
	".jpeg": "image/jpeg",
	".jpg":  "image/jpeg",
	".png":  "image/png",
	".svg":  "image/svg+xml",
	".svgz": "image/svg+xml",
	".tif":  "image/tiff",
	".tiff": "image/tiff",
	".webp": "image/webp",

	// Fonts.
	".eot":   "application/vnd.ms-fontobject",
	".otf":   "font/otf",
	".ttf":   "font/ttf",
	".woff":  "font/woff",
	".woff2": "font/woff2",

	// Audio and video.
	".flac": "audio/flac",
	".m4a":  "audio/x-m4a",
	".mid":  "audio/midi",
	".midi": "audio/midi",
	".mp3":  "audio/mpeg",
	".oga":  "audio/ogg",
	".ogg":  "audio/ogg",
	".opus": "audio/ogg",
	".wav":  "audio/wav",
	".3gp":  "video/3gpp",
	".3gpp": "video/3gpp",
	".avi":  "video/x-msvideo",
	".m3u8": "application/vnd.apple.mpegurl",
	".m4v":  "video/x-m4v",
	".mov":  "video/quicktime",
	".mp4":  "video/mp4",
	".mpeg": "video/mpeg",
	".mpg":  "video/mpeg",
	".ogv":  "video/ogg",
	".ts":   "video/mp2t",
	".webm": "video/webm",

	// Archives and office documents.
	".7z":   "application/x-7z-compressed",
	".gz":   "application/gzip",
	".rar":  "application/x-rar-compressed",
	".tar":  "application/x-tar",
	".zip":  "application/zip",
	".doc":  "application/msword",
	".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
	".odp":  "application/vnd.oasis.opendocument.presentation",
	".ods":  "application/vnd.oasis.opendocument.spreadsheet",
	".odt":  "application/vnd.oasis.opendocument.text",
	".ppt":  "application/vnd.ms-powerpoint",
	".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
	".rtf":  "application/rtf",
	".xls":  "application/vnd.ms-excel",
	".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}

// TypeByName is the Content-Type for a file name: by its extension, in any
// case (nginx lowercases it too), else DefaultType.
func TypeByName(name string) string {
	if t, ok := types[strings.ToLower(path.Ext(name))]; ok {
		return t
	}
	return DefaultType
}
