// Package deploy holds what operators deploy beside the binary: Prometheus
// alerts, a Grafana dashboard, Kubernetes manifests. Its tests check them
// against the real tools and against the metrics the binary exports.
package deploy

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/openpcrs/pcrs-indexer/indexer"
	"github.com/prometheus/client_golang/prometheus"
	"gopkg.in/yaml.v3"
)

func promtool(t *testing.T, args ...string) {
	t.Helper()
	bin, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool is missing: run make test (it installs Debian's prometheus)")
	}
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// TestAlertRules runs the shipped alerts against series that fire each one
// and series that must not (alerts_test.yml).
func TestAlertRules(t *testing.T) {
	promtool(t, "check", "rules", "prometheus/alerts.yml")
	promtool(t, "test", "rules", "prometheus/alerts_test.yml")
}

// TestDashboardQueries checks every dashboard query with promtool, as
// recording rules.
func TestDashboardQueries(t *testing.T) {
	exprs := dashboardExprs(t)
	type rule struct {
		Record string `yaml:"record"`
		Expr   string `yaml:"expr"`
	}
	var rules []rule
	for i, e := range exprs {
		rules = append(rules, rule{Record: "dashboard:panel" + string(rune('a'+i)), Expr: e})
	}
	raw, err := yaml.Marshal(map[string]any{"groups": []any{map[string]any{"name": "dashboard", "rules": rules}}})
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "dashboard.yml")
	if err := os.WriteFile(file, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	promtool(t, "check", "rules", file)
}

func dashboardExprs(t *testing.T) []string {
	t.Helper()
	var d struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	raw, err := os.ReadFile("grafana/pcrs-indexer.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatal(err)
	}
	var exprs []string
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	if len(exprs) < 8 {
		t.Fatalf("only %d dashboard queries", len(exprs))
	}
	return exprs
}

// TestMetricNamesExist: every pcrs_indexer_* name the alerts and the
// dashboard use is one the binary exports, so neither drifts silently.
func TestMetricNamesExist(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := indexer.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	m.ScanFinished("s", indexer.OutcomeSuccess, now, now, &indexer.Report{ProblemsByReason: map[string]int{"corrupt": 1}})
	m.RetryObserved("file", "timeout")
	m.Observer("file").ObserveRequest("read", 1, nil, time.Millisecond)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	exported := map[string]bool{}
	for _, mf := range mfs {
		exported[mf.GetName()] = true
		if mf.GetType().String() == "HISTOGRAM" {
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				exported[mf.GetName()+suffix] = true
			}
		}
	}
	alerts, err := os.ReadFile("prometheus/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	used := regexp.MustCompile(`pcrs_indexer_[a-z_]+`).FindAllString(string(alerts)+strings.Join(dashboardExprs(t), "\n"), -1)
	for _, name := range used {
		if !exported[name] {
			t.Errorf("%s is used by an alert or the dashboard but not exported", name)
		}
	}
}
