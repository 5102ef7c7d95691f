package cli

import (
	"net"
	"testing"

	"github.com/gwhq/gw/internal/config"
)

func TestBoundListeners(t *testing.T) {
	tcp := func(s string) net.Addr {
		a, err := net.ResolveTCPAddr("tcp", s)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	unix := &net.UnixAddr{Name: "/run/gw.sock", Net: "unix"}
	listen := config.Listen{
		HTTP:  config.Addr{Network: "tcp", Address: "127.0.0.1:0"},
		UWSGI: config.Addr{Network: "tcp", Address: ":3031"},
		Stats: config.Addr{Network: "unix", Address: "/run/gw.sock"},
	}
	tests := []struct {
		name  string
		bound []net.Addr
		want  []listener
	}{
		{
			name: "no bound addresses",
			want: []listener{{"http", "127.0.0.1:0"}, {"uwsgi", ":3031"}, {"stats", "unix:/run/gw.sock"}},
		},
		{
			name:  "port 0 gets the chosen port whatever the order",
			bound: []net.Addr{unix, tcp("[::]:3031"), tcp("127.0.0.1:41234")},
			want:  []listener{{"http", "127.0.0.1:41234"}, {"uwsgi", "[::]:3031"}, {"stats", "unix:/run/gw.sock"}},
		},
		{
			name:  "only some listeners bound",
			bound: []net.Addr{tcp("127.0.0.1:41234")},
			want:  []listener{{"http", "127.0.0.1:41234"}, {"uwsgi", ":3031"}, {"stats", "unix:/run/gw.sock"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := boundListeners(&config.Config{Listen: listen}, tc.bound)
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("got %v, want %v", got, tc.want)
				}
			}
		})
	}
}
