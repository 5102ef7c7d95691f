package acceptenc

import "testing"

func TestBest(t *testing.T) {
	all := Zstd | Brotli | Gzip
	tests := []struct {
		name   string
		values []string
		offer  Coding
		want   Coding
	}{
		{"none", nil, all, 0},
		{"empty", []string{""}, all, 0},
		{"gzip", []string{"gzip"}, all, Gzip},
		{"x-gzip", []string{"x-gzip"}, all, Gzip},
		{"browser", []string{"gzip, deflate, br, zstd"}, all, Zstd},
		{"browser no zstd offered", []string{"gzip, deflate, br, zstd"}, Gzip | Brotli, Brotli},
		{"gzip only offered", []string{"gzip, deflate, br, zstd"}, Gzip, Gzip},
		{"q prefers gzip", []string{"zstd;q=0.5, gzip;q=0.8"}, all, Gzip},
		{"q=0 refuses", []string{"zstd;q=0, gzip"}, all, Gzip},
		{"only refusals", []string{"gzip;q=0"}, all, 0},
		{"identity only", []string{"identity"}, all, 0},
		{"star", []string{"*"}, all, Zstd},
		{"star but zstd refused", []string{"*, zstd;q=0"}, all, Brotli},
		{"star refused", []string{"*;q=0"}, all, 0},
		{"case and spaces", []string{" GZIP ; Q=1.0 "}, all, Gzip},
		{"split values", []string{"deflate", "gzip"}, all, Gzip},
		{"malformed q", []string{"gzip;q=abc"}, all, 0},
		{"q too precise", []string{"gzip;q=0.0001"}, all, 0},
		{"q three digits", []string{"gzip;q=0.001"}, all, Gzip},
		{"unknown coding", []string{"compress"}, all, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Best(tc.values, tc.offer); got != tc.want {
				t.Fatalf("Best(%q, %b) = %v, want %v", tc.values, tc.offer, got.Token(), tc.want.Token())
			}
		})
	}
}

func TestBestAllocs(t *testing.T) {
	v := []string{"gzip, deflate, br, zstd;q=0.9"}
	if n := testing.AllocsPerRun(100, func() { Best(v, Zstd|Gzip) }); n != 0 {
		t.Fatalf("Best allocates %v times", n)
	}
}
