package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/gwhq/gw/gateway/admin"
)

func newStats(e env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "stats [--addr ADDR] [--json] [--watch]",
		Short: "Print the live stats of a running gw",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			addr, _ := cmd.Flags().GetString("addr")
			asJSON, _ := cmd.Flags().GetBool("json")
			watch, _ := cmd.Flags().GetBool("watch")
			every, _ := cmd.Flags().GetDuration("interval")
			return stats(e, addr, asJSON, watch, every)
		},
	}
	cmd.Flags().String("addr", "127.0.0.1:9191", "`ADDR` of the running gw's stats listener (host:port or unix:/path)")
	cmd.Flags().Bool("json", false, "print the raw JSON of /stats")
	cmd.Flags().Bool("watch", false, "refresh like top until interrupted")
	cmd.Flags().Duration("interval", time.Second, "refresh `INTERVAL` for --watch")
	return cmd
}

func stats(e env, addr string, asJSON, watch bool, every time.Duration) error {
	client := statsClient(addr)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	for {
		raw, err := fetchStats(ctx, client)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			fmt.Fprintf(e.stderr, "gw stats: %s: %v\n", addr, err)
			return &exitError{code: exitFailure}
		}
		if watch {
			io.WriteString(e.stdout, "\033[H\033[2J") // home, clear: a top-like refresh
		}
		if asJSON {
			e.stdout.Write(raw)
		} else {
			var s admin.Snapshot
			if err := json.Unmarshal(raw, &s); err != nil {
				fmt.Fprintf(e.stderr, "gw stats: %s: bad answer: %v\n", addr, err)
				return &exitError{code: exitFailure}
			}
			printStats(e.stdout, s)
		}
		if !watch {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(every):
		}
	}
}

// statsClient talks HTTP to a tcp or unix: address.
func statsClient(addr string) *http.Client {
	network, address := "tcp", addr
	if p, ok := strings.CutPrefix(addr, "unix:"); ok {
		network, address = "unix", p
	}
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, address)
		},
	}}
}

func fetchStats(ctx context.Context, c *http.Client) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", "http://gw/stats", nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("status %s", resp.Status)
	}
	return io.ReadAll(resp.Body)
}

// printStats renders a snapshot as readable tables.
func printStats(w io.Writer, s admin.Snapshot) {
	fmt.Fprintf(w, "gw %s  pid %d  up %s  requests %d  in flight %d  in %s  out %s\n\n", s.Version, s.PID,
		time.Duration(s.Uptime*float64(time.Second)).Round(time.Second), s.Requests, s.InFlight, mib(s.BytesIn), mib(s.BytesOut))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "APP\tLANG\tMOUNT\tRUNNERS\tQUEUE\tREQUESTS\tSTATUS\tWAIT p50/p99 ms\tAPP p50/p99 ms\tRESPAWNS\tLAST EXIT")
	for _, a := range s.Apps {
		state := fmt.Sprintf("%d/%d", len(a.Runners)-a.States["draining"], a.Workers)
		if a.Failed {
			state += " FAILED"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%s\t%.1f/%.1f\t%.1f/%.1f\t%d\t%s\n", a.Name, a.Lang, a.Mount+"/", state,
			a.Queue, a.Requests, classes(a.Status), a.QueueWait.P50, a.QueueWait.P99, a.Latency.P50, a.Latency.P99,
			a.Respawns, dash(string(a.LastExit)))
	}
	tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "APP\tWORKER\tPID\tSTATE\tREQUESTS\tBUSY\tREQUEST AGE ms\tRSS")
	for _, a := range s.Apps {
		sort.Slice(a.Runners, func(i, j int) bool { return a.Runners[i].ID < a.Runners[j].ID })
		for _, r := range a.Runners {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%d\t%d/%d\t%.0f\t%s\n", a.Name, r.ID, r.PID, r.State, r.Requests,
				r.Busy, r.Slots, r.RequestAge, mib(uint64(r.RSS)))
		}
	}
	tw.Flush()
}

func classes(m map[string]uint64) string {
	var parts []string
	for _, c := range []string{"1xx", "2xx", "3xx", "4xx", "5xx"} {
		if n := m[c]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s:%d", c, n))
		}
	}
	return dash(strings.Join(parts, " "))
}

func mib(b uint64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
