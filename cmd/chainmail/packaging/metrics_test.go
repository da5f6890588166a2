// Package packaging holds the sources of the Debian package (make deb)
// and its tests; it has no Go code of its own.
package packaging

import (
	"encoding/json"
	"errors"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"gopkg.in/yaml.v3"

	"chainmail/checks/dns"
	"chainmail/checks/dnsbl"
	"chainmail/checks/greylist"
	"chainmail/checks/history"
	"chainmail/checks/quota"
	"chainmail/checks/verdictlog"
	"chainmail/milter"
	"chainmail/store"
)

// recorder is a Registerer that keeps what is registered on it.
type recorder struct {
	*prometheus.Registry
	cs []prometheus.Collector
}

func (r *recorder) Register(c prometheus.Collector) error {
	if err := r.Registry.Register(c); err != nil {
		return err
	}
	r.cs = append(r.cs, c)
	return nil
}

func (r *recorder) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

// exported is every metric family serve can export: the collectors serve
// registers (serve.go, the checks' constructors), made the way they are
// made there, named by their descriptions (a vector without children
// gathers nothing).
func exported(t *testing.T) map[string]bool {
	t.Helper()
	reg := &recorder{Registry: prometheus.NewRegistry()}
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	milter.NewMetrics(reg)
	store.NewMetrics(reg)
	quota.NewMetrics(reg)
	greylist.NewMetrics(reg)
	dnsbl.NewSuspendedMetric(reg)
	c, err := dns.New(dns.Config{Servers: []string{"127.0.0.1:53"}, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	reg.MustRegister(c.Collectors()...)
	lg, err := verdictlog.New(verdictlog.Config{}, verdictlog.WithRegisterer(reg))
	if err != nil {
		t.Fatal(err)
	}
	lg.Close()
	h := history.New(store.Unavailable(errors.New("not opened")), history.Config{}, "test", history.WithRegisterer(reg))
	h.Close()

	names := map[string]bool{}
	fq := regexp.MustCompile(`fqName: "([a-zA-Z_:][a-zA-Z0-9_:]*)"`)
	for _, col := range reg.cs {
		ch := make(chan *prometheus.Desc, 256)
		go func() { col.Describe(ch); close(ch) }()
		for d := range ch {
			if m := fq.FindStringSubmatch(d.String()); m != nil {
				names[m[1]] = true
			}
		}
	}
	// The Go collector describes itself as a whole: take its names from
	// a gathering.
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		names[mf.GetName()] = true
	}
	return names
}

var metricName = regexp.MustCompile(`\b((?:chainmail|go|process)_[a-z0-9_]+)\b`)

// referenced returns the metric families an expression names (a
// histogram's _bucket, _sum and _count series count as the histogram).
func referenced(expr string, known map[string]bool) []string {
	var out []string
	for _, m := range metricName.FindAllString(expr, -1) {
		if !known[m] {
			for _, suf := range []string{"_bucket", "_sum", "_count"} {
				if base, ok := strings.CutSuffix(m, suf); ok && known[base] {
					m = base
				}
			}
		}
		out = append(out, m)
	}
	return out
}

// The Grafana dashboard and the alert rules name only metrics chainmail
// exports, and the dashboard shows every chainmail_ family: a metric
// added to the code without a panel fails here.
func TestDashboardAndAlertsUseRealMetrics(t *testing.T) {
	known := exported(t)
	if !known["chainmail_messages_total"] || !known["chainmail_dnsbl_list_suspended"] || !known["chainmail_dns_queries_total"] {
		t.Fatalf("the exported families look wrong: %v", known)
	}

	data, err := os.ReadFile("grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title  string `json:"title"`
		UID    string `json:"uid"`
		Panels []struct {
			Type    string `json:"type"`
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("grafana-dashboard.json: %v", err)
	}
	if dash.UID == "" || dash.Title == "" {
		t.Error("the dashboard has no uid or title")
	}
	shown := map[string]bool{}
	panels := 0
	for _, p := range dash.Panels {
		if p.Type == "row" {
			continue
		}
		panels++
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, q := range p.Targets {
			refs := referenced(q.Expr, known)
			if len(refs) == 0 {
				t.Errorf("panel %q: query %q names no metric", p.Title, q.Expr)
			}
			for _, m := range refs {
				shown[m] = true
				if !known[m] {
					t.Errorf("panel %q: %s is not a metric chainmail exports (%s)", p.Title, m, q.Expr)
				}
			}
		}
	}
	var missing []string
	for m := range known {
		if strings.HasPrefix(m, "chainmail_") && !shown[m] {
			missing = append(missing, m)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("no dashboard panel shows %s", strings.Join(missing, ", "))
	}
	t.Logf("%d panels over %d metric families", panels, len(shown))

	data, err = os.ReadFile("prometheus-alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Name  string `yaml:"name"`
			Rules []struct {
				Alert       string            `yaml:"alert"`
				Expr        string            `yaml:"expr"`
				For         string            `yaml:"for"`
				Labels      map[string]string `yaml:"labels"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&rules); err != nil {
		t.Fatalf("prometheus-alerts.yml: %v", err)
	}
	alerts := map[string]bool{}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			alerts[r.Alert] = true
			if r.Labels["severity"] == "" || r.Annotations["summary"] == "" {
				t.Errorf("alert %s: no severity label or summary", r.Alert)
			}
			if r.For != "" {
				if _, err := time.ParseDuration(r.For); err != nil {
					t.Errorf("alert %s: for %q: %v", r.Alert, r.For, err)
				}
			}
			for _, m := range referenced(r.Expr, known) {
				if !known[m] {
					t.Errorf("alert %s: %s is not a metric chainmail exports", r.Alert, m)
				}
			}
		}
	}
	// What the postmaster must hear about: the state store down, a DNS
	// list suspended, deferrals, quotas.
	for _, a := range []string{"ChainmailStateStoreDown", "ChainmailDNSListSuspended", "ChainmailTempfailRateHigh", "ChainmailQuotaExceeded"} {
		if !alerts[a] {
			t.Errorf("no alert %s", a)
		}
	}
}
