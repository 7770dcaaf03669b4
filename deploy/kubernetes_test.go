package deploy

// The Kubernetes manifests of kubernetes/ are checked offline, against:
//
//   - the Kubernetes API's own Go types, k8s.io/api v0.37.2 (Kubernetes
//     1.37): every document is converted from YAML to JSON the way kubectl
//     does (sigs.k8s.io/yaml, duplicate keys refused) and decoded into its
//     type with sigs.k8s.io/json's strict mode, the API server's: an unknown
//     or miscased field, a duplicate field or a value of the wrong type is
//     an error;
//   - the API server's validation rules for the fields used here, written
//     out below (names, labels, required fields, Job and CronJob
//     constraints, env sources, volumes and mounts, resource requests not
//     above limits), since k8s.io/kubernetes' validation cannot be imported;
//   - the restricted Pod Security Standard the namespace enforces, plus a
//     read-only root filesystem with a writable /tmp;
//   - cross-references: ConfigMaps, keys, claims and volumes named by the pod
//     specs exist in the folder; the only Secret named is the documented
//     credentials Secret, never shipped, whose keys README.md lists;
//   - the pcrs-indexer binary, built from this module: the containers' args
//     use only flags (and PCRS_INDEXER_* variables) its --help lists, with
//     values of the right type; the files they name come from a volume; the
//     shipped manifest CSV and attributes pass the binary's own parsers;
//   - the run's logic: JOB_COMPLETIONS equals completions, the merge reads
//     the batch's output folder, each CronJob's jobTemplate equals its Job's
//     spec, and the weekly merge fires only once the weekly batch is over.
//

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	_ "time/tzdata" // CronJob timeZone names, whatever the machine has

	"github.com/openpcrs/pcrs-indexer/batch"
	"github.com/openpcrs/pcrs-indexer/livrable"
	"github.com/openpcrs/pcrs-indexer/storage"
	"github.com/openpcrs/pcrs-indexer/storage/backends"
	"github.com/openpcrs/pcrs-indexer/vector"
	"gopkg.in/yaml.v3"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/validate/content"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	kjson "sigs.k8s.io/json"
	sigsyaml "sigs.k8s.io/yaml"
)

const (
	k8sDir = "kubernetes"
	// credentialsSecret is created by the operator (README.md), never
	// shipped: the one Secret the manifests may name.
	credentialsSecret = "pcrs-indexer-credentials"
	// binaryImage is the image name (before the tag) of the Dockerfile's
	// image, whose entrypoint is pcrs-indexer.
	binaryImage = "pcrs-indexer"
)

// TestKubernetesManifests checks the shipped folder: it must hold no
// problem at all.
func TestKubernetesManifests(t *testing.T) {
	files := readK8sDir(t)
	for _, p := range checkK8s(files, pcrsIndexerCLI(t), t.TempDir()) {
		t.Error(p)
	}
}

// TestKubernetesManifestsRejectMistakes breaks the folder in memory, one
// mistake at a time, and expects the check to name each.
func TestKubernetesManifestsRejectMistakes(t *testing.T) {
	cli := pcrsIndexerCLI(t)
	orig := readK8sDir(t)
	batchArgs := "spec.template.spec.containers.0.args"
	for _, tc := range []struct {
		name   string
		mutate func(t *testing.T, files map[string][]byte)
		want   string // a substring of one of the problems
	}{
		{"unknown field", edit("batch-job.yaml", func(d map[string]any) {
			set(d, "spec.template.spec.containers.0.imagePullSecret", "regcred")
		}), `unknown field "spec.template.spec.containers[0].imagePullSecret"`},
		{"miscased field", edit("batch-job.yaml", func(d map[string]any) {
			del(d, "spec.template.spec.restartPolicy")
			set(d, "spec.template.spec.RestartPolicy", "Never")
		}), `unknown field "spec.template.spec.RestartPolicy"`},
		{"unknown field in the CronJob", edit("merge-cronjob.yaml", func(d map[string]any) {
			set(d, "spec.concurrency", "Forbid")
		}), `unknown field "spec.concurrency"`},
		{"wrong type", edit("batch-job.yaml", func(d map[string]any) { set(d, "spec.completions", "eight") }),
			"cannot unmarshal string into Go struct field JobSpec.spec.completions of type int32"},
		{"wrong quantity", edit("batch-job.yaml", func(d map[string]any) {
			set(d, "spec.template.spec.containers.0.resources.limits.memory", "4 gigabytes")
		}), "quantities must match"},
		{"duplicate key", func(t *testing.T, files map[string][]byte) {
			replaceOnce(t, files, "pvc.yaml", "  accessModes: [ReadWriteMany]\n", "  accessModes: [ReadWriteMany]\n  accessModes: [ReadWriteOnce]\n")
		}, `key "accessModes" already set in map`},
		{"unsupported kind", edit("pvc.yaml", func(d map[string]any) { d["apiVersion"] = "v2" }), "unsupported apiVersion/kind v2/PersistentVolumeClaim"},
		{"restartPolicy Always", edit("batch-job.yaml", func(d map[string]any) {
			set(d, "spec.template.spec.restartPolicy", "Always")
		}), `restartPolicy must be Never or OnFailure in a Job, not "Always"`},
		{"restartPolicy missing", edit("merge-cronjob.yaml", func(d map[string]any) {
			del(d, "spec.jobTemplate.spec.template.spec.restartPolicy")
		}), `restartPolicy must be Never or OnFailure in a Job, not ""`},
		{"podFailurePolicy with OnFailure", edit("merge-job.yaml", func(d map[string]any) {
			set(d, "spec.template.spec.restartPolicy", "OnFailure")
		}), "podFailurePolicy needs restartPolicy Never"},
		{"image missing", edit("batch-job.yaml", func(d map[string]any) {
			del(d, "spec.template.spec.containers.0.image")
		}), "containers[0] (batch): image is required"},
		{"container name missing", edit("merge-job.yaml", func(d map[string]any) {
			del(d, "spec.template.spec.containers.0.name")
		}), "containers[0] (): name is required"},
		{"Indexed without completions", edit("batch-job.yaml", func(d map[string]any) {
			del(d, "spec.completions")
		}), "completionMode Indexed needs completions"},
		{"backoffLimitPerIndex without Indexed", edit("batch-job.yaml", func(d map[string]any) {
			del(d, "spec.completionMode")
		}), "backoffLimitPerIndex needs completionMode Indexed"},
		{"no deadline", edit("merge-job.yaml", func(d map[string]any) { del(d, "spec.activeDeadlineSeconds") }),
			"activeDeadlineSeconds is required"},
		{"JOB_COMPLETIONS drift", edit("batch-job.yaml", func(d map[string]any) { set(d, "spec.completions", 16) }),
			`JOB_COMPLETIONS is "8" but completions is 16`},
		{"CronJob drift", edit("batch-cronjob.yaml", func(d map[string]any) {
			set(d, "spec.jobTemplate.spec.parallelism", 6)
		}), "spec.jobTemplate.spec differs from batch-job.yaml's spec at: parallelism"},
		{"CronJob args drift", edit("merge-cronjob.yaml", func(d map[string]any) {
			set(d, "spec.jobTemplate.spec.template.spec.containers.0.args.2", "--format=gpkg")
		}), "template.spec.containers[0].args[2]"},
		{"merge Job not suspended", edit("merge-job.yaml", func(d map[string]any) { del(d, "spec.suspend") }),
			"must be created suspended"},
		{"merge before the batch is over", edit("merge-cronjob.yaml", func(d map[string]any) {
			set(d, "spec.schedule", "0 12 * * 6")
		}), "fires at 2026-03-07 12:00 CET, before the batch run of 2026-03-07 01:00 CET is surely over (2026-03-07 22:00 CET)"},
		{"bad schedule", edit("batch-cronjob.yaml", func(d map[string]any) { set(d, "spec.schedule", "0 25 * * 6") }),
			`schedule "0 25 * * 6": hour: 25 out of 0-23`},
		{"bad timeZone", edit("batch-cronjob.yaml", func(d map[string]any) { set(d, "spec.timeZone", "Europe/Pariss") }),
			`timeZone "Europe/Pariss"`},
		{"unknown flag", edit("batch-job.yaml", func(d map[string]any) {
			set(d, batchArgs, append(get(d, batchArgs).([]any), "--no-such-flag"))
		}), "pcrs-indexer batch has no flag --no-such-flag"},
		{"flag of another command", edit("merge-job.yaml", func(d map[string]any) {
			set(d, "spec.template.spec.containers.0.args.1", "--state=/out/state/merge.db")
		}), "pcrs-indexer merge has no flag --state"},
		{"flag value of the wrong type", edit("batch-job.yaml", func(d map[string]any) {
			set(d, batchArgs+".4", "--scan-timeout=6 hours")
		}), `--scan-timeout "6 hours"`},
		{"unknown format", edit("batch-job.yaml", func(d map[string]any) { set(d, batchArgs+".3", "--format=tiff") }),
			`--format "tiff"`},
		{"required flag missing", edit("merge-job.yaml", func(d map[string]any) {
			set(d, "spec.template.spec.containers.0.args", []any{"merge", "/out/shards"})
		}), "pcrs-indexer merge needs --out"},
		{"no manifest", edit("batch-job.yaml", func(d map[string]any) {
			args := get(d, batchArgs).([]any)
			set(d, batchArgs, args[:len(args)-1])
		}), "pcrs-indexer batch takes 1 argument(s) (MANIFEST), got 0"},
		{"unknown PCRS_INDEXER_ variable", edit("batch-job.yaml", func(d map[string]any) {
			env := get(d, "spec.template.spec.containers.0.env").([]any)
			set(d, "spec.template.spec.containers.0.env", append(env, map[string]any{"name": "PCRS_INDEXER_SHARDS", "value": "4"}))
		}), "PCRS_INDEXER_SHARDS names no flag of pcrs-indexer batch"},
		{"undefined $(VAR)", edit("batch-job.yaml", func(d map[string]any) {
			set(d, batchArgs+".2", "--state=/out/state/shard-$(SHARD).db")
		}), "$(SHARD) is not defined"},
		{"input file from no volume", edit("batch-job.yaml", func(d map[string]any) {
			set(d, batchArgs+".6", "--sftp-known-hosts=/etc/ssh/ssh_known_hosts")
		}), "/etc/ssh/ssh_known_hosts: no configMap or secret volume provides it"},
		{"input file missing from the ConfigMap", edit("batch-job.yaml", func(d map[string]any) {
			set(d, batchArgs+".6", "--sftp-known-hosts=/etc/pcrs-indexer/config/known-hosts")
		}), `ConfigMap pcrs-indexer-config has no key "known-hosts"`},
		{"output not on the claim", edit("batch-job.yaml", func(d map[string]any) {
			set(d, batchArgs+".1", "--out=/tmp/shards")
		}), "--out /tmp/shards: not on a writable persistentVolumeClaim"},
		{"merge reads another folder", edit("merge-job.yaml", func(d map[string]any) {
			set(d, "spec.template.spec.containers.0.args.3", "/out/batch")
		}), "merge reads /out/batch, which no batch writes (--out: /out/shards)"},
		{"insecure SFTP", edit("batch-job.yaml", func(d map[string]any) {
			set(d, batchArgs, append(get(d, batchArgs).([]any), "--sftp-insecure-ignore-host-key"))
		}), "--sftp-insecure-ignore-host-key"},
		{"catalog rows without --catalog", edit("config.yaml", func(d map[string]any) {
			set(d, "data.manifest\\.csv", "location,projet,livrable\ns3://b/x/,0b8f3a2e-4c1d-4e6f-9a7b-2c3d4e5f6a7b,Aude\n")
		}), "rows with projet and livrable need --catalog"},
		{"manifest with a password", edit("config.yaml", func(d map[string]any) {
			set(d, "data.manifest\\.csv", "location\nftp://u:secret@h/x/\n")
		}), "the location carries a password"},
		{"unsupported storage", edit("config.yaml", func(d map[string]any) {
			set(d, "data.manifest\\.csv", "location\ngs://bucket/x/\n")
		}), `scheme "gs"`},
		{"bad attributes", edit("config.yaml", func(d map[string]any) {
			set(d, "data.aude-2023\\.yaml", "statut: fini\n")
		}), "aude-2023.yaml: "},
		{"missing attributes file", edit("config.yaml", func(d map[string]any) { del(d, "data.aude-2023\\.yaml") }),
			`ConfigMap pcrs-indexer-config has no key "aude-2023.yaml"`},
		{"other Secret", edit("batch-job.yaml", func(d map[string]any) {
			set(d, "spec.template.spec.containers.0.env.3.valueFrom.secretKeyRef.name", "aws")
		}), "Secret aws is neither defined here nor the documented pcrs-indexer-credentials"},
		{"undocumented credentials key", edit("batch-job.yaml", func(d map[string]any) {
			set(d, "spec.template.spec.containers.0.env.3.valueFrom.secretKeyRef.key", "aws-key")
		}), "key aws-key of Secret pcrs-indexer-credentials is not documented in README.md"},
		{"Secret shipped", func(t *testing.T, files map[string][]byte) {
			files["secret.yaml"] = []byte("apiVersion: v1\nkind: Secret\nmetadata:\n  name: pcrs-indexer-credentials\nstringData:\n  password: hunter2\n")
		}, "ships Secret pcrs-indexer-credentials"},
		{"unknown claim", edit("merge-job.yaml", func(d map[string]any) {
			set(d, "spec.template.spec.volumes.0.persistentVolumeClaim.claimName", "out")
		}), "PersistentVolumeClaim out is not defined"},
		{"unknown ConfigMap", edit("batch-job.yaml", func(d map[string]any) {
			set(d, "spec.template.spec.volumes.1.configMap.name", "pcrs-config")
		}), "ConfigMap pcrs-config is not defined"},
		{"mount of no volume", edit("batch-job.yaml", func(d map[string]any) {
			set(d, "spec.template.spec.containers.0.volumeMounts.3.name", "scratch")
		}), `volumeMounts[3]: no volume "scratch"`},
		{"claim not ReadWriteMany", edit("pvc.yaml", func(d map[string]any) { set(d, "spec.accessModes", []any{"ReadWriteOnce"}) }),
			"pods of pcrs-indexer-batch run in parallel: PersistentVolumeClaim pcrs-indexer-out must be ReadWriteMany"},
		{"requests above limits", edit("merge-job.yaml", func(d map[string]any) {
			set(d, "spec.template.spec.containers.0.resources.requests.memory", "3Gi")
		}), "requests.memory 3Gi is above limits.memory 2Gi"},
		{"writable root", edit("batch-job.yaml", func(d map[string]any) {
			set(d, "spec.template.spec.containers.0.securityContext.readOnlyRootFilesystem", false)
		}), "securityContext.readOnlyRootFilesystem must be true"},
		{"no /tmp", edit("merge-job.yaml", func(d map[string]any) {
			set(d, "spec.template.spec.containers.0.volumeMounts", []any{map[string]any{"name": "out", "mountPath": "/out"}})
		}), "/tmp must be a writable emptyDir"},
		{"root", edit("merge-job.yaml", func(d map[string]any) { set(d, "spec.template.spec.securityContext.runAsUser", 0) }),
			"runAsUser must not be 0"},
		{"privilege escalation", edit("batch-job.yaml", func(d map[string]any) {
			del(d, "spec.template.spec.initContainers.0.securityContext.allowPrivilegeEscalation")
		}), "initContainers[0] (mkdir): securityContext.allowPrivilegeEscalation must be false"},
		{"file missing from kustomization", func(t *testing.T, files map[string][]byte) {
			replaceOnce(t, files, "kustomization.yaml", "  - pvc.yaml\n", "")
		}, "kustomization.yaml: resources misses pvc.yaml"},
		{"unknown kustomization field", func(t *testing.T, files map[string][]byte) {
			replaceOnce(t, files, "kustomization.yaml", "namespace: pcrs-indexer\n", "namespace: pcrs-indexer\nnamePrefx: x-\n")
		}, "field namePrefx not found"},
		{"two namespaces", edit("pvc.yaml", func(d map[string]any) { set(d, "metadata.namespace", "default") }),
			`namespace "default", but kustomization.yaml sets pcrs-indexer`},
		{"bad label", edit("batch-job.yaml", func(d map[string]any) {
			set(d, "spec.template.metadata.labels.app\\.kubernetes\\.io/component", "batch job")
		}), `label app.kubernetes.io/component="batch job"`},
		{"CronJob name too long", edit("merge-cronjob.yaml", func(d map[string]any) {
			set(d, "metadata.name", "pcrs-indexer-weekly-merge-of-the-national-outputs-and-reports")
		}), "a CronJob name has at most 52 characters"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			files := map[string][]byte{}
			for k, v := range orig {
				files[k] = slices.Clone(v)
			}
			tc.mutate(t, files)
			probs := checkK8s(files, cli, t.TempDir())
			for _, p := range probs {
				if strings.Contains(p, tc.want) {
					t.Logf("caught: %s", p)
					return
				}
			}
			t.Errorf("no problem says %q; got:\n%s", tc.want, strings.Join(probs, "\n"))
		})
	}
}

// ---- the folder and the CLI ----

func readK8sDir(t *testing.T) map[string][]byte {
	t.Helper()
	entries, err := os.ReadDir(k8sDir)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		raw, err := os.ReadFile(filepath.Join(k8sDir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		files[e.Name()] = raw
	}
	return files
}

// cliCommand is what `pcrs-indexer SUB --help` says.
type cliCommand struct {
	name     string
	flags    map[string]string // name → "bool", or the value's type word (string, int, duration, float, value)
	required []string          // flags whose help says (required)
	env      map[string]bool   // PCRS_INDEXER_* variables the help names besides the flags'
	posNames string            // e.g. "MANIFEST"
	minPos   int
	maxPos   int // -1: no limit
}

var (
	cliOnce sync.Once
	cliCmds map[string]*cliCommand
	cliErr  error
)

// pcrsIndexerCLI builds the binary from this module once and reads the
// batch and merge commands' --help.
func pcrsIndexerCLI(t *testing.T) map[string]*cliCommand {
	t.Helper()
	cliOnce.Do(func() { cliCmds, cliErr = buildCLI() })
	if cliErr != nil {
		t.Fatal(cliErr)
	}
	return cliCmds
}

func buildCLI() (map[string]*cliCommand, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "pcrs-indexer-cli-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "pcrs-indexer")
	if out, err := exec.Command(goBin, "build", "-o", bin, "../cmd/pcrs-indexer").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build ../cmd/pcrs-indexer: %v\n%s", err, out)
	}
	cmds := map[string]*cliCommand{}
	for _, sub := range []string{"batch", "merge"} {
		out, err := exec.Command(bin, sub, "--help").Output()
		if err != nil {
			return nil, fmt.Errorf("pcrs-indexer %s --help: %v", sub, err)
		}
		c, err := parseHelp(sub, string(out))
		if err != nil {
			return nil, err
		}
		cmds[sub] = c
	}
	return cmds, nil
}

var (
	helpFlag  = regexp.MustCompile(`^  -([a-z0-9][a-z0-9-]*)(?: (\S+))?$`)
	helpEnv   = regexp.MustCompile(`\$(PCRS_INDEXER_[A-Z0-9_]+)`)
	helpUsage = regexp.MustCompile(`^usage: pcrs-indexer (\S+) (.*)$`)
)

// parseHelp reads the flag package's PrintDefaults output and the usage
// line.
func parseHelp(sub, help string) (*cliCommand, error) {
	c := &cliCommand{name: sub, flags: map[string]string{}, env: map[string]bool{}}
	lines := strings.Split(help, "\n")
	m := helpUsage.FindStringSubmatch(lines[0])
	if m == nil || m[1] != sub {
		return nil, fmt.Errorf("pcrs-indexer %s --help: no usage line: %q", sub, lines[0])
	}
	words := strings.Fields(m[2])
	var pos []string
	for i := 0; i < len(words); i++ {
		w := words[i]
		switch {
		case w == "[flags]":
		case strings.HasPrefix(w, "-"):
			if i+1 < len(words) && strings.ToUpper(words[i+1]) == words[i+1] && !strings.HasSuffix(words[i+1], "...") {
				i++ // the flag's value
			}
		case strings.HasPrefix(w, "["):
			pos = append(pos, w)
			c.maxPos = -1
		case strings.HasSuffix(w, "..."):
			pos = append(pos, w)
			c.minPos++
			c.maxPos = -1
		default:
			pos = append(pos, w)
			c.minPos++
			if c.maxPos >= 0 {
				c.maxPos++
			}
		}
	}
	c.posNames = strings.Join(pos, " ")
	var last string
	for _, l := range lines[1:] {
		if m := helpFlag.FindStringSubmatch(l); m != nil {
			last = m[1]
			c.flags[last] = "bool"
			if m[2] != "" {
				c.flags[last] = m[2]
			}
			continue
		}
		if last != "" && strings.HasPrefix(l, "    \t") && strings.Contains(l, "(required)") {
			c.required = append(c.required, last)
		}
		for _, e := range helpEnv.FindAllStringSubmatch(l, -1) {
			c.env[e[1]] = true
		}
	}
	if len(c.flags) < 2 {
		return nil, fmt.Errorf("pcrs-indexer %s --help lists %d flags:\n%s", sub, len(c.flags), help)
	}
	return c, nil
}

// ---- decoding ----

// k8sObject is one document of a file, decoded into its API type.
type k8sObject struct {
	file string
	doc  int // 1-based
	kind string
	obj  any
}

func (o *k8sObject) meta() *metav1.ObjectMeta {
	return reflect.ValueOf(o.obj).Elem().FieldByName("ObjectMeta").Addr().Interface().(*metav1.ObjectMeta)
}

func (o *k8sObject) where() string {
	return fmt.Sprintf("%s: %s %s", o.file, o.kind, o.meta().Name)
}

// k8sKinds are the kinds this folder may hold, by apiVersion/kind.
var k8sKinds = map[string]func() any{
	"v1/Namespace":             func() any { return &corev1.Namespace{} },
	"v1/ConfigMap":             func() any { return &corev1.ConfigMap{} },
	"v1/Secret":                func() any { return &corev1.Secret{} },
	"v1/PersistentVolumeClaim": func() any { return &corev1.PersistentVolumeClaim{} },
	"batch/v1/Job":             func() any { return &batchv1.Job{} },
	"batch/v1/CronJob":         func() any { return &batchv1.CronJob{} },
}

// decodeK8sFile splits a file into its documents (as kubectl does) and
// decodes each strictly.
func decodeK8sFile(file string, raw []byte) ([]*k8sObject, []string) {
	var objs []*k8sObject
	var probs []string
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(raw)))
	for n := 1; ; n++ {
		doc, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return objs, append(probs, fmt.Sprintf("%s: %v", file, err))
		}
		where := fmt.Sprintf("%s (document %d)", file, n)
		j, err := sigsyaml.YAMLToJSONStrict(doc)
		if err != nil {
			probs = append(probs, fmt.Sprintf("%s: %v", where, err))
			continue
		}
		if bytes.Equal(bytes.TrimSpace(j), []byte("null")) {
			continue // comments only
		}
		var tm metav1.TypeMeta
		if err := json.Unmarshal(j, &tm); err != nil {
			probs = append(probs, fmt.Sprintf("%s: %v", where, err))
			continue
		}
		gvk := tm.APIVersion + "/" + tm.Kind
		newObj, ok := k8sKinds[gvk]
		if !ok {
			probs = append(probs, fmt.Sprintf("%s: unsupported apiVersion/kind %s", where, gvk))
			continue
		}
		obj := newObj()
		strict, err := kjson.UnmarshalStrict(j, obj)
		if err != nil {
			probs = append(probs, fmt.Sprintf("%s: %s: %v", where, tm.Kind, err))
			continue
		}
		for _, e := range strict {
			probs = append(probs, fmt.Sprintf("%s: %s: %v", where, tm.Kind, e))
		}
		objs = append(objs, &k8sObject{file: file, doc: n, kind: tm.Kind, obj: obj})
	}
	return objs, probs
}

// kustomization holds the fields of kustomize's Kustomization this folder
// uses; any other is refused (kustomize refuses unknown ones too).
type kustomization struct {
	APIVersion string   `yaml:"apiVersion"`
	Kind       string   `yaml:"kind"`
	Namespace  string   `yaml:"namespace"`
	Resources  []string `yaml:"resources"`
	Images     []struct {
		Name    string `yaml:"name"`
		NewName string `yaml:"newName"`
		NewTag  string `yaml:"newTag"`
		Digest  string `yaml:"digest"`
	} `yaml:"images"`
}

func decodeKustomization(raw []byte, k *kustomization) error {
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	return dec.Decode(k)
}

// ---- the check ----

// k8sCheck accumulates the problems of one folder.
type k8sCheck struct {
	files  map[string][]byte
	cli    map[string]*cliCommand
	tmp    string
	readme string
	kust   kustomization
	objs   []*k8sObject
	probs  []string
	// what the pods run, gathered for the folder-wide checks
	runs       []*podRun
	secretUsed bool // credentialsSecret is referenced
}

// podRun is a container running pcrs-indexer in a Job's pod.
type podRun struct {
	owner      *k8sObject
	job        *batchv1.JobSpec
	spec       *corev1.PodSpec
	c          *corev1.Container
	sub        string              // batch, merge
	flags      map[string][]string // flag → values given
	positional []string
}

func (k *k8sCheck) problem(where, format string, args ...any) {
	k.probs = append(k.probs, where+": "+fmt.Sprintf(format, args...))
}

// checkK8s returns every problem of the folder's files.
func checkK8s(files map[string][]byte, cli map[string]*cliCommand, tmp string) []string {
	k := &k8sCheck{files: files, cli: cli, tmp: tmp, readme: string(files["README.md"])}
	if k.readme == "" {
		k.problem(k8sDir, "no README.md")
	}
	k.checkKustomization()
	var names []string
	for name := range files {
		if strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".yml") {
			if name != "kustomization.yaml" {
				names = append(names, name)
			}
		}
	}
	sort.Strings(names)
	for _, name := range names {
		objs, probs := decodeK8sFile(name, files[name])
		k.objs = append(k.objs, objs...)
		k.probs = append(k.probs, probs...)
	}
	seen := map[string]string{}
	for _, o := range k.objs {
		id := o.kind + "/" + o.meta().Name
		if prev, dup := seen[id]; dup {
			k.problem(o.where(), "also defined in %s", prev)
		}
		seen[id] = o.file
		k.checkObject(o)
	}
	k.checkRuns()
	if k.secretUsed && !strings.Contains(k.readme, credentialsSecret) {
		k.problem("README.md", "does not document Secret %s, which the pods use", credentialsSecret)
	}
	k.checkCronJobsMatchJobs()
	k.checkCommentedFlags(names)
	return k.probs
}

func (k *k8sCheck) checkKustomization() {
	raw, ok := k.files["kustomization.yaml"]
	if !ok {
		k.problem(k8sDir, "no kustomization.yaml")
		return
	}
	if err := decodeKustomization(raw, &k.kust); err != nil {
		k.problem("kustomization.yaml", "%v", err)
		return
	}
	if k.kust.APIVersion != "kustomize.config.k8s.io/v1beta1" || k.kust.Kind != "Kustomization" {
		k.problem("kustomization.yaml", "apiVersion/kind %s/%s, want kustomize.config.k8s.io/v1beta1/Kustomization", k.kust.APIVersion, k.kust.Kind)
	}
	if errs := content.IsDNS1123Label(k.kust.Namespace); len(errs) > 0 {
		k.problem("kustomization.yaml", "namespace %q: %s", k.kust.Namespace, strings.Join(errs, "; "))
	}
	listed := map[string]bool{}
	for _, r := range k.kust.Resources {
		if listed[r] {
			k.problem("kustomization.yaml", "resources lists %s twice", r)
		}
		listed[r] = true
		if _, ok := k.files[r]; !ok {
			k.problem("kustomization.yaml", "resources lists %s, which is not in %s/", r, k8sDir)
		}
	}
	for name := range k.files {
		if strings.HasSuffix(name, ".yaml") && name != "kustomization.yaml" && !listed[name] {
			k.problem("kustomization.yaml", "resources misses %s", name)
		}
	}
	for _, im := range k.kust.Images {
		if im.Name == "" || im.NewName == "" && im.NewTag == "" && im.Digest == "" {
			k.problem("kustomization.yaml", "images entry %q changes nothing", im.Name)
		}
	}
}

func (k *k8sCheck) checkObject(o *k8sObject) {
	k.checkMeta(o)
	switch v := o.obj.(type) {
	case *corev1.Namespace:
		if errs := content.IsDNS1123Label(v.Name); len(errs) > 0 {
			k.problem(o.where(), "name: %s", strings.Join(errs, "; "))
		}
		if k.kust.Namespace != "" && v.Name != k.kust.Namespace {
			k.problem(o.where(), "kustomization.yaml puts the objects in namespace %s", k.kust.Namespace)
		}
	case *corev1.Secret:
		k.problem(o.where(), "ships Secret %s: credentials are never shipped; README.md tells the operator how to create %s", v.Name, credentialsSecret)
	case *corev1.ConfigMap:
		size := 0
		for key, val := range v.Data {
			size += len(key) + len(val)
			if errs := validation.IsConfigMapKey(key); len(errs) > 0 {
				k.problem(o.where(), "data key %q: %s", key, strings.Join(errs, "; "))
			}
			if _, dup := v.BinaryData[key]; dup {
				k.problem(o.where(), "key %q is in both data and binaryData", key)
			}
		}
		for key, val := range v.BinaryData {
			size += len(key) + len(val)
		}
		if size > 1<<20 {
			k.problem(o.where(), "%d bytes: a ConfigMap holds at most 1 MiB", size)
		}
	case *corev1.PersistentVolumeClaim:
		if len(v.Spec.AccessModes) == 0 {
			k.problem(o.where(), "spec.accessModes is required")
		}
		for _, m := range v.Spec.AccessModes {
			switch m {
			case corev1.ReadWriteOnce, corev1.ReadOnlyMany, corev1.ReadWriteMany:
			case corev1.ReadWriteOncePod:
				if len(v.Spec.AccessModes) > 1 {
					k.problem(o.where(), "ReadWriteOncePod goes alone")
				}
			default:
				k.problem(o.where(), "spec.accessModes: unknown mode %q", m)
			}
		}
		if q, ok := v.Spec.Resources.Requests[corev1.ResourceStorage]; !ok || q.Sign() <= 0 {
			k.problem(o.where(), "spec.resources.requests.storage is required and positive")
		}
	case *batchv1.Job:
		if len(v.Name) > validation.DNS1123LabelMaxLength {
			k.problem(o.where(), "a Job name (the job-name label of its pods) has at most 63 characters")
		}
		k.checkJobSpec(o, "spec", &v.Spec)
	case *batchv1.CronJob:
		k.checkCronJob(o, v)
	}
}

func (k *k8sCheck) checkMeta(o *k8sObject) {
	m := o.meta()
	if m.Name == "" {
		k.problem(o.where(), "metadata.name is required")
	} else if errs := content.IsDNS1123Subdomain(m.Name); len(errs) > 0 {
		k.problem(o.where(), "metadata.name: %s", strings.Join(errs, "; "))
	}
	if m.GenerateName != "" {
		k.problem(o.where(), "metadata.generateName does not work with kubectl apply")
	}
	if _, isNS := o.obj.(*corev1.Namespace); !isNS && m.Namespace != "" && m.Namespace != k.kust.Namespace {
		k.problem(o.where(), "namespace %q, but kustomization.yaml sets %s", m.Namespace, k.kust.Namespace)
	}
	k.checkLabels(o.where()+": metadata.labels", m.Labels)
}

func (k *k8sCheck) checkLabels(where string, labels map[string]string) {
	for key, val := range labels {
		errs := append(content.IsLabelKey(key), content.IsLabelValue(val)...)
		if len(errs) > 0 {
			k.problem(where, "label %s=%q: %s", key, val, strings.Join(errs, "; "))
		}
	}
}

func (k *k8sCheck) checkCronJob(o *k8sObject, cj *batchv1.CronJob) {
	w := o.where()
	if len(cj.Name) > 52 {
		k.problem(w, "a CronJob name has at most 52 characters (its Jobs add 11)")
	}
	if _, err := parseCron(cj.Spec.Schedule); err != nil {
		k.problem(w, "schedule %q: %v", cj.Spec.Schedule, err)
	}
	if cj.Spec.TimeZone != nil {
		if _, err := time.LoadLocation(*cj.Spec.TimeZone); err != nil || *cj.Spec.TimeZone == "Local" {
			k.problem(w, "timeZone %q: not a time zone name (%v)", *cj.Spec.TimeZone, err)
		}
	}
	switch cj.Spec.ConcurrencyPolicy {
	case "", batchv1.AllowConcurrent, batchv1.ForbidConcurrent, batchv1.ReplaceConcurrent:
	default:
		k.problem(w, "concurrencyPolicy %q: Allow, Forbid or Replace", cj.Spec.ConcurrencyPolicy)
	}
	for name, p := range map[string]*int32{"successfulJobsHistoryLimit": cj.Spec.SuccessfulJobsHistoryLimit, "failedJobsHistoryLimit": cj.Spec.FailedJobsHistoryLimit} {
		if p != nil && *p < 0 {
			k.problem(w, "%s must not be negative", name)
		}
	}
	if p := cj.Spec.StartingDeadlineSeconds; p != nil && *p < 0 {
		k.problem(w, "startingDeadlineSeconds must not be negative")
	}
	k.checkLabels(w+": spec.jobTemplate.metadata.labels", cj.Spec.JobTemplate.Labels)
	k.checkJobSpec(o, "spec.jobTemplate.spec", &cj.Spec.JobTemplate.Spec)
}

func (k *k8sCheck) checkJobSpec(o *k8sObject, at string, js *batchv1.JobSpec) {
	w := o.where() + ": " + at
	nonNeg := func(name string, p *int32) {
		if p != nil && *p < 0 {
			k.problem(w, "%s must not be negative", name)
		}
	}
	nonNeg("parallelism", js.Parallelism)
	nonNeg("completions", js.Completions)
	nonNeg("backoffLimit", js.BackoffLimit)
	nonNeg("backoffLimitPerIndex", js.BackoffLimitPerIndex)
	nonNeg("maxFailedIndexes", js.MaxFailedIndexes)
	nonNeg("ttlSecondsAfterFinished", js.TTLSecondsAfterFinished)
	if js.ActiveDeadlineSeconds == nil || *js.ActiveDeadlineSeconds <= 0 {
		k.problem(w, "activeDeadlineSeconds is required (a positive bound on the run)")
	}
	if js.Selector != nil || js.ManualSelector != nil && *js.ManualSelector {
		k.problem(w, "selector: let the Job controller generate it")
	}
	indexed := js.CompletionMode != nil && *js.CompletionMode == batchv1.IndexedCompletion
	if js.CompletionMode != nil && *js.CompletionMode != batchv1.IndexedCompletion && *js.CompletionMode != batchv1.NonIndexedCompletion {
		k.problem(w, "completionMode %q: Indexed or NonIndexed", *js.CompletionMode)
	}
	if indexed {
		switch {
		case js.Completions == nil || *js.Completions < 1:
			k.problem(w, "completionMode Indexed needs completions (the number of shards)")
		case *js.Completions > 100_000:
			k.problem(w, "completions of an Indexed Job are at most 100000")
		}
		if js.Parallelism != nil && *js.Parallelism > 100_000 {
			k.problem(w, "parallelism of an Indexed Job is at most 100000")
		}
	}
	if js.BackoffLimitPerIndex != nil && !indexed {
		k.problem(w, "backoffLimitPerIndex needs completionMode Indexed")
	}
	if js.MaxFailedIndexes != nil {
		if js.BackoffLimitPerIndex == nil {
			k.problem(w, "maxFailedIndexes needs backoffLimitPerIndex")
		} else if js.Completions != nil && *js.MaxFailedIndexes > *js.Completions {
			k.problem(w, "maxFailedIndexes is above completions")
		}
	}
	tmpl := &js.Template
	k.checkLabels(w+".template.metadata.labels", tmpl.Labels)
	if rp := tmpl.Spec.RestartPolicy; rp != corev1.RestartPolicyNever && rp != corev1.RestartPolicyOnFailure {
		k.problem(w, "template.spec.restartPolicy must be Never or OnFailure in a Job, not %q", rp)
	}
	if pfp := js.PodFailurePolicy; pfp != nil {
		if tmpl.Spec.RestartPolicy != corev1.RestartPolicyNever {
			k.problem(w, "podFailurePolicy needs restartPolicy Never")
		}
		for i, r := range pfp.Rules {
			rw := fmt.Sprintf("%s.podFailurePolicy.rules[%d]", w, i)
			switch r.Action {
			case batchv1.PodFailurePolicyActionFailJob, batchv1.PodFailurePolicyActionIgnore, batchv1.PodFailurePolicyActionCount:
			case batchv1.PodFailurePolicyActionFailIndex:
				if js.BackoffLimitPerIndex == nil {
					k.problem(rw, "action FailIndex needs backoffLimitPerIndex")
				}
			default:
				k.problem(rw, "unknown action %q", r.Action)
			}
			if (r.OnExitCodes == nil) == (len(r.OnPodConditions) == 0) {
				k.problem(rw, "exactly one of onExitCodes and onPodConditions")
			}
			if ec := r.OnExitCodes; ec != nil {
				if ec.Operator != batchv1.PodFailurePolicyOnExitCodesOpIn && ec.Operator != batchv1.PodFailurePolicyOnExitCodesOpNotIn {
					k.problem(rw, "onExitCodes.operator %q: In or NotIn", ec.Operator)
				}
				if len(ec.Values) == 0 || ec.Operator == batchv1.PodFailurePolicyOnExitCodesOpIn && slices.Contains(ec.Values, 0) {
					k.problem(rw, "onExitCodes.values: at least one, and 0 not with In")
				}
				if ec.ContainerName != nil && containerByName(&tmpl.Spec, *ec.ContainerName) == nil {
					k.problem(rw, "onExitCodes.containerName %q is no container of the template", *ec.ContainerName)
				}
			}
			for _, pc := range r.OnPodConditions {
				if pc.Type == "" {
					k.problem(rw, "onPodConditions: type is required")
				}
			}
		}
	}
	k.checkPodSpec(o, w+".template.spec", js, &tmpl.Spec)
}

func containerByName(spec *corev1.PodSpec, name string) *corev1.Container {
	for i := range spec.Containers {
		if spec.Containers[i].Name == name {
			return &spec.Containers[i]
		}
	}
	return nil
}

// allContainers lists the init containers, then the containers, each with
// its field path.
func allContainers(spec *corev1.PodSpec) ([]*corev1.Container, []string) {
	var cs []*corev1.Container
	var at []string
	for i := range spec.InitContainers {
		cs = append(cs, &spec.InitContainers[i])
		at = append(at, fmt.Sprintf("initContainers[%d] (%s)", i, spec.InitContainers[i].Name))
	}
	for i := range spec.Containers {
		cs = append(cs, &spec.Containers[i])
		at = append(at, fmt.Sprintf("containers[%d] (%s)", i, spec.Containers[i].Name))
	}
	return cs, at
}

// restrictedVolumes are the volume types the restricted Pod Security
// Standard allows.
var restrictedVolumes = map[string]bool{"ConfigMap": true, "CSI": true, "DownwardAPI": true, "EmptyDir": true, "Ephemeral": true, "PersistentVolumeClaim": true, "Projected": true, "Secret": true}

func (k *k8sCheck) checkPodSpec(o *k8sObject, w string, js *batchv1.JobSpec, spec *corev1.PodSpec) {
	if len(spec.Containers) == 0 {
		k.problem(w, "containers: at least one is required")
	}
	if spec.ServiceAccountName != "" && spec.ServiceAccountName != "default" {
		k.problem(w, "serviceAccountName %s is not defined here", spec.ServiceAccountName)
	}
	if spec.HostNetwork || spec.HostPID || spec.HostIPC {
		k.problem(w, "host namespaces are not allowed (restricted Pod Security Standard)")
	}
	// volumes
	volumes := map[string]*corev1.Volume{}
	for i := range spec.Volumes {
		v := &spec.Volumes[i]
		vw := fmt.Sprintf("%s.volumes[%d]", w, i)
		if errs := content.IsDNS1123Label(v.Name); len(errs) > 0 {
			k.problem(vw, "name %q: %s", v.Name, strings.Join(errs, "; "))
		}
		if volumes[v.Name] != nil {
			k.problem(vw, "name %q is used twice", v.Name)
		}
		volumes[v.Name] = v
		src := reflect.ValueOf(v.VolumeSource)
		var set []string
		for f := 0; f < src.NumField(); f++ {
			if !src.Field(f).IsNil() {
				set = append(set, src.Type().Field(f).Name)
			}
		}
		if len(set) != 1 {
			k.problem(vw, "exactly one volume source, not %v", set)
			continue
		}
		if !restrictedVolumes[set[0]] {
			k.problem(vw, "%s volumes are not allowed (restricted Pod Security Standard)", set[0])
		}
		switch {
		case v.PersistentVolumeClaim != nil:
			if k.find("PersistentVolumeClaim", v.PersistentVolumeClaim.ClaimName) == nil {
				k.problem(vw, "PersistentVolumeClaim %s is not defined in %s/", v.PersistentVolumeClaim.ClaimName, k8sDir)
			}
		case v.ConfigMap != nil:
			opt := v.ConfigMap.Optional != nil && *v.ConfigMap.Optional
			for _, it := range v.ConfigMap.Items {
				k.configMapKey(vw, v.ConfigMap.Name, it.Key, opt)
			}
			if len(v.ConfigMap.Items) == 0 {
				k.configMapKey(vw, v.ConfigMap.Name, "", opt)
			}
		case v.Secret != nil:
			for _, it := range v.Secret.Items {
				k.secretKey(vw, v.Secret.SecretName, it.Key)
			}
			if len(v.Secret.Items) == 0 {
				k.secretKey(vw, v.Secret.SecretName, "")
			}
		}
		for _, it := range itemsOf(v) {
			if it.Key == "" || it.Path == "" || path.IsAbs(it.Path) || strings.Contains(it.Path, "..") {
				k.problem(vw, "items: key and a relative path without .. are required")
			}
		}
	}
	// pod security
	psc := spec.SecurityContext
	if psc == nil {
		psc = &corev1.PodSecurityContext{}
	}
	if psc.RunAsUser != nil && *psc.RunAsUser == 0 {
		k.problem(w, "securityContext.runAsUser must not be 0")
	}
	names := map[string]bool{}
	cs, ats := allContainers(spec)
	for i, c := range cs {
		cw := w + "." + ats[i]
		if c.Name == "" {
			k.problem(cw, "name is required")
		} else if errs := content.IsDNS1123Label(c.Name); len(errs) > 0 {
			k.problem(cw, "name: %s", strings.Join(errs, "; "))
		}
		if names[c.Name] {
			k.problem(cw, "name %q is used twice", c.Name)
		}
		names[c.Name] = true
		if strings.TrimSpace(c.Image) == "" {
			k.problem(cw, "image is required")
		} else if strings.ContainsAny(c.Image, " \t\n") {
			k.problem(cw, "image %q has blanks", c.Image)
		}
		switch c.ImagePullPolicy {
		case "", corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever:
		default:
			k.problem(cw, "imagePullPolicy %q", c.ImagePullPolicy)
		}
		if c.Image != "" && !k.imageRetargeted(c.Image) {
			k.problem(cw, "image %s: kustomization.yaml's images has no entry for it, so an operator cannot point it at a registry", c.Image)
		}
		k.checkSecurity(cw, psc, c)
		k.checkResources(cw, c)
		env := k.checkEnv(cw, c)
		k.checkMounts(cw, c, volumes)
		k.checkExpansions(cw, js, c, env)
		if c.SecurityContext != nil && c.SecurityContext.ReadOnlyRootFilesystem != nil && *c.SecurityContext.ReadOnlyRootFilesystem && k.runsBinary(c) {
			m, v, _ := mountOf(c, volumes, "/tmp/x")
			if m == nil || m.MountPath != "/tmp" || m.ReadOnly || v.EmptyDir == nil {
				k.problem(cw, "/tmp must be a writable emptyDir (the root filesystem is read-only)")
			}
			if home, ok := env["HOME"]; !ok {
				k.problem(cw, "HOME must name a writable folder (the image's is on the read-only root filesystem)")
			} else if m, _, _ := mountOf(c, volumes, home+"/x"); m == nil || m.ReadOnly {
				k.problem(cw, "HOME=%s is not on a writable volume", home)
			}
		}
		if k.runsBinary(c) && js != nil {
			k.collectRun(o, cw, js, spec, c, volumes)
		}
	}
}

func itemsOf(v *corev1.Volume) []*corev1.KeyToPath {
	var src []corev1.KeyToPath
	switch {
	case v.ConfigMap != nil:
		src = v.ConfigMap.Items
	case v.Secret != nil:
		src = v.Secret.Items
	}
	var out []*corev1.KeyToPath
	for i := range src {
		out = append(out, &src[i])
	}
	return out
}

func (k *k8sCheck) imageRetargeted(image string) bool {
	name := imageName(image)
	for _, im := range k.kust.Images {
		if im.Name == name {
			return true
		}
	}
	return false
}

// imageName is an image reference without its tag or digest.
func imageName(image string) string {
	image, _, _ = strings.Cut(image, "@")
	if i := strings.LastIndex(image, ":"); i > strings.LastIndex(image, "/") {
		image = image[:i]
	}
	return image
}

// runsBinary: the container runs pcrs-indexer (the image's entrypoint, or
// named by command).
func (k *k8sCheck) runsBinary(c *corev1.Container) bool {
	if len(c.Command) == 0 {
		return path.Base(imageName(c.Image)) == binaryImage
	}
	return path.Base(c.Command[0]) == "pcrs-indexer"
}

// checkSecurity applies the restricted Pod Security Standard and the
// read-only root filesystem.
func (k *k8sCheck) checkSecurity(cw string, psc *corev1.PodSecurityContext, c *corev1.Container) {
	sc := c.SecurityContext
	if sc == nil {
		sc = &corev1.SecurityContext{}
	}
	nonRoot := sc.RunAsNonRoot != nil && *sc.RunAsNonRoot || sc.RunAsNonRoot == nil && psc.RunAsNonRoot != nil && *psc.RunAsNonRoot
	if !nonRoot {
		k.problem(cw, "runAsNonRoot must be true (pod or container securityContext)")
	}
	if sc.RunAsUser != nil && *sc.RunAsUser == 0 {
		k.problem(cw, "securityContext.runAsUser must not be 0")
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		k.problem(cw, "securityContext.allowPrivilegeEscalation must be false")
	}
	if sc.Privileged != nil && *sc.Privileged {
		k.problem(cw, "securityContext.privileged is not allowed")
	}
	if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
		k.problem(cw, "securityContext.capabilities.drop must hold ALL")
	} else {
		for _, a := range sc.Capabilities.Add {
			if a != "NET_BIND_SERVICE" {
				k.problem(cw, "securityContext.capabilities.add %s is not allowed", a)
			}
		}
	}
	seccomp := sc.SeccompProfile
	if seccomp == nil {
		seccomp = psc.SeccompProfile
	}
	if seccomp == nil || seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault && seccomp.Type != corev1.SeccompProfileTypeLocalhost {
		k.problem(cw, "seccompProfile must be RuntimeDefault or Localhost (pod or container securityContext)")
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		k.problem(cw, "securityContext.readOnlyRootFilesystem must be true")
	}
}

func (k *k8sCheck) checkResources(cw string, c *corev1.Container) {
	r := c.Resources
	for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if _, ok := r.Requests[name]; !ok {
			k.problem(cw, "resources.requests.%s is required", name)
		}
	}
	if _, ok := r.Limits[corev1.ResourceMemory]; !ok {
		k.problem(cw, "resources.limits.memory is required")
	}
	for name, req := range r.Requests {
		if lim, ok := r.Limits[name]; ok && req.Cmp(lim) > 0 {
			k.problem(cw, "resources.requests.%s %s is above limits.%s %s", name, req.String(), name, lim.String())
		}
	}
	for name, q := range r.Limits {
		if q.Sign() <= 0 {
			k.problem(cw, "resources.limits.%s must be positive", name)
		}
	}
}

// checkEnv returns the container's plain values (by name; "" for
// valueFrom ones).
func (k *k8sCheck) checkEnv(cw string, c *corev1.Container) map[string]string {
	env := map[string]string{}
	for i, e := range c.Env {
		ew := fmt.Sprintf("%s.env[%d] (%s)", cw, i, e.Name)
		if errs := validation.IsEnvVarName(e.Name); len(errs) > 0 {
			k.problem(ew, "name: %s", strings.Join(errs, "; "))
		}
		if _, dup := env[e.Name]; dup {
			k.problem(ew, "defined twice")
		}
		env[e.Name] = e.Value
		vf := e.ValueFrom
		if vf == nil {
			continue
		}
		if e.Value != "" {
			k.problem(ew, "value and valueFrom are exclusive")
		}
		n := 0
		if vf.SecretKeyRef != nil {
			n++
			k.secretKey(ew, vf.SecretKeyRef.Name, vf.SecretKeyRef.Key)
		}
		if vf.ConfigMapKeyRef != nil {
			n++
			k.configMapKey(ew, vf.ConfigMapKeyRef.Name, vf.ConfigMapKeyRef.Key, vf.ConfigMapKeyRef.Optional != nil && *vf.ConfigMapKeyRef.Optional)
		}
		if vf.FieldRef != nil {
			n++
			if vf.FieldRef.FieldPath == "" {
				k.problem(ew, "fieldRef.fieldPath is required")
			}
		}
		if vf.ResourceFieldRef != nil {
			n++
		}
		if vf.FileKeyRef != nil {
			n++
		}
		if n != 1 {
			k.problem(ew, "valueFrom needs exactly one source, not %d", n)
		}
	}
	for i, ef := range c.EnvFrom {
		efw := fmt.Sprintf("%s.envFrom[%d]", cw, i)
		switch {
		case ef.SecretRef != nil && ef.ConfigMapRef == nil:
			k.secretKey(efw, ef.SecretRef.Name, "")
		case ef.ConfigMapRef != nil && ef.SecretRef == nil:
			k.configMapKey(efw, ef.ConfigMapRef.Name, "", ef.ConfigMapRef.Optional != nil && *ef.ConfigMapRef.Optional)
		default:
			k.problem(efw, "exactly one of configMapRef and secretRef")
		}
	}
	return env
}

func (k *k8sCheck) checkMounts(cw string, c *corev1.Container, volumes map[string]*corev1.Volume) {
	paths := map[string]bool{}
	for i, m := range c.VolumeMounts {
		mw := fmt.Sprintf("%s.volumeMounts[%d]", cw, i)
		if volumes[m.Name] == nil {
			k.problem(mw, "no volume %q", m.Name)
		}
		if !path.IsAbs(m.MountPath) || path.Clean(m.MountPath) != m.MountPath {
			k.problem(mw, "mountPath %q must be a clean absolute path", m.MountPath)
		}
		if paths[m.MountPath] {
			k.problem(mw, "mountPath %s is used twice", m.MountPath)
		}
		paths[m.MountPath] = true
	}
}

var envRef = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)`)

// checkExpansions: every $(VAR) of command, args and env values names a
// variable the container has (else Kubernetes leaves it as it is).
func (k *k8sCheck) checkExpansions(cw string, js *batchv1.JobSpec, c *corev1.Container, env map[string]string) {
	indexed := js != nil && js.CompletionMode != nil && *js.CompletionMode == batchv1.IndexedCompletion
	known := func(name string) bool {
		_, ok := env[name]
		return ok || indexed && name == "JOB_COMPLETION_INDEX"
	}
	for _, s := range slices.Concat(c.Command, c.Args) {
		for _, m := range envRef.FindAllStringSubmatch(s, -1) {
			if !known(m[1]) {
				k.problem(cw, "%q: $(%s) is not defined in the container's env", s, m[1])
			}
		}
	}
}

func (k *k8sCheck) find(kind, name string) *k8sObject {
	for _, o := range k.objs {
		if o.kind == kind && o.meta().Name == name {
			return o
		}
	}
	return nil
}

// configMapKey checks a reference to a ConfigMap (and its key, unless "").
func (k *k8sCheck) configMapKey(where, name, key string, optional bool) {
	o := k.find("ConfigMap", name)
	if o == nil {
		if !optional {
			k.problem(where, "ConfigMap %s is not defined in %s/", name, k8sDir)
		}
		return
	}
	cm := o.obj.(*corev1.ConfigMap)
	if _, ok := cm.Data[key]; key != "" && !ok && !optional {
		if _, ok := cm.BinaryData[key]; !ok {
			k.problem(where, "ConfigMap %s has no key %q", name, key)
		}
	}
}

// secretKey checks a reference to a Secret: only the documented
// credentials Secret, with keys README.md lists.
func (k *k8sCheck) secretKey(where, name, key string) {
	if name != credentialsSecret {
		k.problem(where, "Secret %s is neither defined here nor the documented %s", name, credentialsSecret)
		return
	}
	k.secretUsed = true
	if key != "" && !strings.Contains(k.readme, "`"+key+"`") {
		k.problem(where, "key %s of Secret %s is not documented in README.md", key, credentialsSecret)
	}
}

// mountOf finds the mount holding the absolute path p, and p relative to
// it.
func mountOf(c *corev1.Container, volumes map[string]*corev1.Volume, p string) (*corev1.VolumeMount, *corev1.Volume, string) {
	var best *corev1.VolumeMount
	for i := range c.VolumeMounts {
		m := &c.VolumeMounts[i]
		if (p == m.MountPath || strings.HasPrefix(p, strings.TrimSuffix(m.MountPath, "/")+"/")) && (best == nil || len(m.MountPath) > len(best.MountPath)) {
			best = m
		}
	}
	if best == nil || volumes[best.Name] == nil {
		return nil, nil, ""
	}
	rel := strings.TrimPrefix(strings.TrimPrefix(p, best.MountPath), "/")
	return best, volumes[best.Name], rel
}

// ---- what the pods run ----

// Flags naming files the binary reads, and folders or files it writes.
var (
	inputFileFlags  = []string{"sftp-key", "sftp-known-hosts", "password-file"}
	outputPathFlags = []string{"out", "state", "metrics-file"}
)

// collectRun checks a pcrs-indexer container's command line against the
// binary's --help, and keeps it for the folder-wide checks.
func (k *k8sCheck) collectRun(o *k8sObject, cw string, js *batchv1.JobSpec, spec *corev1.PodSpec, c *corev1.Container, volumes map[string]*corev1.Volume) {
	args := c.Args
	if len(c.Command) > 0 {
		args = append(slices.Clone(c.Command[1:]), args...)
	}
	if len(args) == 0 {
		k.problem(cw, "pcrs-indexer with no command: want batch or merge")
		return
	}
	cmd := k.cli[args[0]]
	if cmd == nil {
		k.problem(cw, "pcrs-indexer %s: the pods may run batch or merge", args[0])
		return
	}
	run := &podRun{owner: o, job: js, spec: spec, c: c, sub: cmd.name, flags: map[string][]string{}}
	where := cw + ": pcrs-indexer " + cmd.name
	rest := args[1:]
	for i := 0; i < len(rest); i++ {
		a := rest[i]
		if a == "--" {
			run.positional = append(run.positional, rest[i+1:]...)
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			run.positional = append(run.positional, a)
			continue
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		kind, ok := cmd.flags[name]
		if !ok {
			k.problem(where, "pcrs-indexer %s has no flag --%s", cmd.name, name)
			continue
		}
		if kind == "bool" {
			if !hasVal {
				val = "true"
			}
		} else if !hasVal {
			if i+1 == len(rest) {
				k.problem(where, "--%s needs a value", name)
				continue
			}
			i++
			val = rest[i]
		}
		k.checkFlagValue(where, name, kind, val)
		run.flags[name] = append(run.flags[name], val)
	}
	for _, e := range c.Env {
		name, ok := strings.CutPrefix(e.Name, "PCRS_INDEXER_")
		if !ok || cmd.env[e.Name] {
			continue
		}
		flag := strings.ToLower(strings.ReplaceAll(name, "_", "-"))
		kind, known := cmd.flags[flag]
		switch {
		case !known:
			k.problem(where, "env %s names no flag of pcrs-indexer %s", e.Name, cmd.name)
		case e.ValueFrom == nil:
			k.checkFlagValue(where, flag, kind, e.Value)
			if _, given := run.flags[flag]; !given {
				run.flags[flag] = []string{e.Value}
			}
		default:
			if _, given := run.flags[flag]; !given {
				run.flags[flag] = []string{""}
			}
		}
	}
	for _, f := range cmd.required {
		if _, ok := run.flags[f]; !ok {
			k.problem(where, "pcrs-indexer %s needs --%s", cmd.name, f)
		}
	}
	if n := len(run.positional); n < cmd.minPos || cmd.maxPos >= 0 && n > cmd.maxPos {
		k.problem(where, "pcrs-indexer %s takes %d argument(s) (%s), got %d: %q", cmd.name, cmd.minPos, cmd.posNames, n, run.positional)
	}
	if _, ok := run.flags["sftp-insecure-ignore-host-key"]; ok {
		k.problem(where, "--sftp-insecure-ignore-host-key: list the host keys in known_hosts instead")
	}
	// Files read come from a ConfigMap or the credentials Secret; what is
	// written goes to the claim.
	for _, f := range inputFileFlags {
		for _, v := range run.flags[f] {
			if v != "" {
				k.inputFile(where, c, volumes, "--"+f+" "+v, v)
			}
		}
	}
	for _, f := range outputPathFlags {
		for _, v := range run.flags[f] {
			k.outputPath(where, c, volumes, "--"+f+" "+v, v)
		}
	}
	switch cmd.name {
	case "batch":
		for _, m := range run.positional {
			k.checkManifest(where, c, volumes, run, m)
		}
		k.checkShard(where, js, c, run)
	case "merge":
		for _, p := range run.positional {
			k.outputPath(where, c, volumes, "SHARD_OUT "+p, p)
		}
	}
	k.runs = append(k.runs, run)
}

func (k *k8sCheck) checkFlagValue(where, name, kind, val string) {
	if envRef.MatchString(val) {
		return // known at run time only
	}
	var err error
	switch kind {
	case "bool":
		_, err = strconv.ParseBool(val)
	case "int":
		_, err = strconv.Atoi(val)
	case "float":
		_, err = strconv.ParseFloat(val, 64)
	case "duration":
		_, err = time.ParseDuration(val)
	}
	if name == "format" {
		_, err = vector.ParseFormats([]string{val})
	}
	if err != nil {
		k.problem(where, "--%s %q: %v", name, val, err)
	}
}

// inputFile: the file comes from a configMap or secret volume, and the
// ConfigMap (or the documented Secret) has its key.
func (k *k8sCheck) inputFile(where string, c *corev1.Container, volumes map[string]*corev1.Volume, what, p string) (string, bool) {
	if !path.IsAbs(p) {
		k.problem(where, "%s: give an absolute path", what)
		return "", false
	}
	_, v, rel := mountOf(c, volumes, p)
	if v == nil || v.ConfigMap == nil && v.Secret == nil {
		k.problem(where, "%s: no configMap or secret volume provides it", what)
		return "", false
	}
	key := rel
	if items := itemsOf(v); len(items) > 0 {
		key = ""
		for _, it := range items {
			if it.Path == rel {
				key = it.Key
			}
		}
		if key == "" {
			k.problem(where, "%s: the volume's items have no path %s", what, rel)
			return "", false
		}
	}
	if v.Secret != nil {
		k.secretKey(where+": "+what, v.Secret.SecretName, key)
		return "", false
	}
	o := k.find("ConfigMap", v.ConfigMap.Name)
	if o == nil {
		return "", false // reported with the volume
	}
	val, ok := o.obj.(*corev1.ConfigMap).Data[key]
	if !ok {
		k.problem(where, "%s: ConfigMap %s has no key %q", what, v.ConfigMap.Name, key)
	}
	return val, ok
}

// outputPath: written on a writable mount of a persistentVolumeClaim.
func (k *k8sCheck) outputPath(where string, c *corev1.Container, volumes map[string]*corev1.Volume, what, p string) {
	m, v, _ := mountOf(c, volumes, p)
	if !path.IsAbs(p) || m == nil || m.ReadOnly || v.PersistentVolumeClaim == nil {
		k.problem(where, "%s: not on a writable persistentVolumeClaim mount (the outputs would be lost)", what)
	}
}

// checkManifest runs the shipped manifest and attributes through the
// binary's own parsers.
func (k *k8sCheck) checkManifest(where string, c *corev1.Container, volumes map[string]*corev1.Volume, run *podRun, p string) {
	csv, ok := k.inputFile(where, c, volumes, "MANIFEST "+p, p)
	if !ok {
		return
	}
	rows, err := batch.ParseManifest(strings.NewReader(csv))
	if err != nil {
		k.problem(where, "MANIFEST %s: %v", p, err)
		return
	}
	if len(rows) == 0 {
		k.problem(where, "MANIFEST %s has no row", p)
	}
	schemes := backends.Registry().Schemes()
	for _, r := range rows {
		rw := fmt.Sprintf("%s: MANIFEST %s line %d", where, p, r.Line)
		u, err := storage.ParseLocation(r.Location)
		if err != nil {
			k.problem(rw, "%v", err)
			continue
		}
		if !slices.Contains(schemes, u.Scheme) {
			k.problem(rw, "scheme %q: pcrs-indexer reads %s", u.Scheme, strings.Join(schemes, ", "))
		}
		if u.Scheme == "file" {
			k.problem(rw, "%s: a local folder of the pod is no storage a national run can read", r.Location)
		}
		if u.Scheme == "sftp" && len(run.flags["sftp-known-hosts"]) == 0 {
			k.problem(rw, "an SFTP storage needs --sftp-known-hosts (the image has no ~/.ssh/known_hosts)")
		}
		if (r.Projet != "" || r.Livrable != "") && len(run.flags["catalog"]) == 0 {
			k.problem(rw, "rows with projet and livrable need --catalog")
		}
		if r.Attributes != "" {
			ap := r.Attributes
			if !path.IsAbs(ap) {
				ap = path.Join(path.Dir(p), ap)
			}
			text, ok := k.inputFile(rw, c, volumes, "attributes "+ap, ap)
			if !ok {
				continue
			}
			file := filepath.Join(k.tmp, path.Base(ap))
			if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
				k.problem(rw, "%v", err)
				continue
			}
			if _, err := livrable.Load(file); err != nil {
				k.problem(rw, "attributes: %v", err)
			}
		}
	}
}

// checkShard: each pod of an Indexed Job scans its own shard, N being
// JOB_COMPLETIONS, which Kubernetes does not set.
func (k *k8sCheck) checkShard(where string, js *batchv1.JobSpec, c *corev1.Container, run *podRun) {
	if len(run.flags["shard"]) > 0 {
		return
	}
	indexed := js.CompletionMode != nil && *js.CompletionMode == batchv1.IndexedCompletion
	if !indexed {
		if js.Parallelism != nil && *js.Parallelism > 1 || js.Completions != nil && *js.Completions > 1 {
			k.problem(where, "several pods with no shard each: use completionMode Indexed (or --shard)")
		}
		return
	}
	var n string
	found := false
	for _, e := range c.Env {
		if e.Name == "JOB_COMPLETIONS" {
			n, found = e.Value, true
		}
	}
	switch {
	case !found:
		k.problem(where, "env JOB_COMPLETIONS is required: Kubernetes sets JOB_COMPLETION_INDEX only")
	case js.Completions != nil && n != strconv.Itoa(int(*js.Completions)):
		k.problem(where, "env JOB_COMPLETIONS is %q but completions is %d: shards would be lost or scanned twice", n, *js.Completions)
	}
}

// checkRuns: the folder-wide logic of a run.
func (k *k8sCheck) checkRuns() {
	batchOut := map[string]bool{}
	for _, r := range k.runs {
		if r.sub == "batch" {
			for _, o := range r.flags["out"] {
				batchOut[path.Clean(o)] = true
			}
		}
	}
	var outs []string
	for o := range batchOut {
		outs = append(outs, o)
	}
	sort.Strings(outs)
	for _, r := range k.runs {
		w := r.owner.where()
		// Pods of one Job in parallel share the claim.
		if r.job.Parallelism != nil && *r.job.Parallelism > 1 {
			for _, v := range r.spec.Volumes {
				if v.PersistentVolumeClaim == nil {
					continue
				}
				if o := k.find("PersistentVolumeClaim", v.PersistentVolumeClaim.ClaimName); o != nil {
					pvc := o.obj.(*corev1.PersistentVolumeClaim)
					if !slices.Contains(pvc.Spec.AccessModes, corev1.ReadWriteMany) {
						k.problem(w, "pods of %s run in parallel: PersistentVolumeClaim %s must be ReadWriteMany", r.owner.meta().Name, pvc.Name)
					}
				}
			}
		}
		if r.sub != "merge" {
			continue
		}
		for _, p := range r.positional {
			if !batchOut[path.Clean(p)] {
				k.problem(w, "merge reads %s, which no batch writes (--out: %s)", p, strings.Join(outs, ", "))
			}
		}
		for _, o := range r.flags["out"] {
			for b := range batchOut {
				if o == b || strings.HasPrefix(path.Clean(o)+"/", b+"/") {
					k.problem(w, "merge writes %s inside the batch outputs %s", o, b)
				}
			}
		}
		// A one-off merge applied with its batch would merge before the
		// batch has written anything.
		if j, ok := r.owner.obj.(*batchv1.Job); ok {
			if j.Spec.Suspend == nil || !*j.Spec.Suspend {
				k.problem(w, "a one-off merge Job applied with its batch Job must be created suspended (resumed once the batch is over)")
			}
		}
		if cj, ok := r.owner.obj.(*batchv1.CronJob); ok && cj.Spec.JobTemplate.Spec.Suspend != nil && *cj.Spec.JobTemplate.Spec.Suspend {
			k.problem(w, "the CronJob's Jobs are created suspended: nobody would resume them")
		}
	}
	k.checkWeeklyOrder()
}

// checkWeeklyOrder: each merge CronJob fires after every batch CronJob's
// run is surely over (started within startingDeadlineSeconds, stopped at
// activeDeadlineSeconds), and before the next run starts.
func (k *k8sCheck) checkWeeklyOrder() {
	var batches, merges []*batchv1.CronJob
	for _, r := range k.runs {
		if cj, ok := r.owner.obj.(*batchv1.CronJob); ok {
			if r.sub == "batch" {
				batches = append(batches, cj)
			} else {
				merges = append(merges, cj)
			}
		}
	}
	for _, b := range batches {
		bw := fmt.Sprintf("CronJob %s", b.Name)
		if b.Spec.StartingDeadlineSeconds == nil || b.Spec.JobTemplate.Spec.ActiveDeadlineSeconds == nil {
			k.problem(bw, "startingDeadlineSeconds and activeDeadlineSeconds bound the run: the merge cannot be ordered after it without them")
			continue
		}
		bound := time.Duration(*b.Spec.StartingDeadlineSeconds+*b.Spec.JobTemplate.Spec.ActiveDeadlineSeconds) * time.Second
		bFires, err := cronFires(b)
		if err != nil {
			continue // reported with the CronJob
		}
		if len(bFires) == 0 {
			k.problem(bw, "never fires in March and April 2026")
			continue
		}
		for _, m := range merges {
			mw := fmt.Sprintf("CronJob %s", m.Name)
			mFires, err := cronFires(m)
			if err != nil {
				continue
			}
			for i, bt := range bFires {
				j := sort.Search(len(mFires), func(j int) bool { return mFires[j].After(bt) })
				if j == len(mFires) {
					break
				}
				mt := mFires[j]
				const layout = "2006-01-02 15:04 MST"
				if end := bt.Add(bound); mt.Before(end) {
					k.problem(mw, "fires at %s, before the batch run of %s is surely over (%s)", mt.Format(layout), bt.Format(layout), end.Format(layout))
					break
				}
				if i+1 < len(bFires) && mt.After(bFires[i+1]) {
					k.problem(mw, "the batch run of %s is merged only at %s, after the next run starts", bt.Format(layout), mt.Format(layout))
					break
				}
			}
		}
	}
}

// cronFires lists the CronJob's fire times in March and April 2026 (a DST
// change included), in its time zone.
func cronFires(cj *batchv1.CronJob) ([]time.Time, error) {
	c, err := parseCron(cj.Spec.Schedule)
	if err != nil {
		return nil, err
	}
	loc := time.UTC
	if cj.Spec.TimeZone != nil {
		if loc, err = time.LoadLocation(*cj.Spec.TimeZone); err != nil {
			return nil, err
		}
	}
	var fires []time.Time
	end := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	for t := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC); t.Before(end); t = t.Add(time.Minute) {
		if c.matches(t.In(loc)) {
			fires = append(fires, t.In(loc))
		}
	}
	return fires, nil
}

// cronSpec is a standard 5-field schedule (minute hour day-of-month month
// day-of-week), as the CronJob controller reads it.
type cronSpec struct {
	field            [5]map[int]bool
	domStar, dowStar bool
}

var cronMacros = map[string]string{"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *"}

func parseCron(s string) (*cronSpec, error) {
	if m, ok := cronMacros[s]; ok {
		s = m
	}
	if strings.Contains(s, "TZ=") {
		return nil, errors.New("set spec.timeZone, not TZ= in the schedule")
	}
	parts := strings.Fields(s)
	if len(parts) != 5 {
		return nil, fmt.Errorf("want 5 fields, got %d", len(parts))
	}
	bounds := [5]struct {
		name     string
		min, max int
	}{{"minute", 0, 59}, {"hour", 0, 23}, {"day of month", 1, 31}, {"month", 1, 12}, {"day of week", 0, 7}}
	c := &cronSpec{domStar: parts[2] == "*" || parts[2] == "?", dowStar: parts[4] == "*" || parts[4] == "?"}
	for i, p := range parts {
		b := bounds[i]
		set := map[int]bool{}
		for _, item := range strings.Split(p, ",") {
			rng, stepText, hasStep := strings.Cut(item, "/")
			step := 1
			if hasStep {
				n, err := strconv.Atoi(stepText)
				if err != nil || n < 1 {
					return nil, fmt.Errorf("%s: bad step %q", b.name, stepText)
				}
				step = n
			}
			lo, hi := b.min, b.max
			if rng != "*" && rng != "?" {
				a, z, isRange := strings.Cut(rng, "-")
				var err1, err2 error
				lo, err1 = strconv.Atoi(a)
				hi = lo
				if isRange {
					hi, err2 = strconv.Atoi(z)
				} else if hasStep {
					hi = b.max
				}
				if err1 != nil || err2 != nil {
					return nil, fmt.Errorf("%s: %q is not a number or range (names are not supported here)", b.name, rng)
				}
				for _, v := range []int{lo, hi} {
					if v < b.min || v > b.max {
						return nil, fmt.Errorf("%s: %d out of %d-%d", b.name, v, b.min, b.max)
					}
				}
				if lo > hi {
					return nil, fmt.Errorf("%s: range %q goes backwards", b.name, rng)
				}
			}
			for v := lo; v <= hi; v += step {
				if i == 4 && v == 7 {
					v = 0
				}
				set[v] = true
			}
		}
		c.field[i] = set
	}
	return c, nil
}

func (c *cronSpec) matches(t time.Time) bool {
	if !c.field[0][t.Minute()] || !c.field[1][t.Hour()] || !c.field[3][int(t.Month())] {
		return false
	}
	dom, dow := c.field[2][t.Day()], c.field[4][int(t.Weekday())]
	switch {
	case c.domStar && c.dowStar:
		return true
	case c.domStar:
		return dow
	case c.dowStar:
		return dom
	default:
		return dom || dow // cron: either restricted day field matches
	}
}

// checkCronJobsMatchJobs: each CronJob runs its one-off Job's spec (suspend
// aside), so the weekly and one-off runs never drift apart.
func (k *k8sCheck) checkCronJobsMatchJobs() {
	subOf := func(o *k8sObject) string {
		for _, r := range k.runs {
			if r.owner == o {
				return r.sub
			}
		}
		return ""
	}
	jobs := map[string]*k8sObject{}
	for _, o := range k.objs {
		if _, ok := o.obj.(*batchv1.Job); ok {
			jobs[subOf(o)] = o
		}
	}
	matched := map[*k8sObject]bool{}
	for _, o := range k.objs {
		cj, ok := o.obj.(*batchv1.CronJob)
		if !ok {
			continue
		}
		jo := jobs[subOf(o)]
		if jo == nil {
			k.problem(o.where(), "no one-off Job runs pcrs-indexer %s like it", subOf(o))
			continue
		}
		matched[jo] = true
		job := jo.obj.(*batchv1.Job)
		a, b := job.Spec.DeepCopy(), cj.Spec.JobTemplate.Spec.DeepCopy()
		a.Suspend, b.Suspend = nil, nil
		if d := jsonDiff(a, b); len(d) > 0 {
			k.problem(o.where(), "spec.jobTemplate.spec differs from %s's spec at: %s", jo.file, strings.Join(d, ", "))
		}
		if d := jsonDiff(job.Labels, cj.Spec.JobTemplate.Labels); len(d) > 0 {
			k.problem(o.where(), "spec.jobTemplate.metadata.labels differ from %s's labels at: %s", jo.file, strings.Join(d, ", "))
		}
	}
	for _, jo := range jobs {
		if !matched[jo] {
			k.problem(jo.where(), "no CronJob runs it weekly")
		}
	}
}

// jsonDiff lists the paths where a and b differ, as JSON.
func jsonDiff(a, b any) []string {
	var ga, gb any
	for _, p := range []struct {
		v   any
		out *any
	}{{a, &ga}, {b, &gb}} {
		raw, err := json.Marshal(p.v)
		if err != nil {
			return []string{err.Error()}
		}
		if err := json.Unmarshal(raw, p.out); err != nil {
			return []string{err.Error()}
		}
	}
	var diffs []string
	var walk func(at string, x, y any)
	walk = func(at string, x, y any) {
		xm, xok := x.(map[string]any)
		ym, yok := y.(map[string]any)
		if xok && yok {
			keys := map[string]bool{}
			for key := range xm {
				keys[key] = true
			}
			for key := range ym {
				keys[key] = true
			}
			var sorted []string
			for key := range keys {
				sorted = append(sorted, key)
			}
			sort.Strings(sorted)
			for _, key := range sorted {
				sub := key
				if at != "" {
					sub = at + "." + key
				}
				walk(sub, xm[key], ym[key])
			}
			return
		}
		xs, xok := x.([]any)
		ys, yok := y.([]any)
		if xok && yok && len(xs) == len(ys) {
			for i := range xs {
				walk(fmt.Sprintf("%s[%d]", at, i), xs[i], ys[i])
			}
			return
		}
		if !reflect.DeepEqual(x, y) {
			diffs = append(diffs, at)
		}
	}
	walk("", ga, gb)
	return diffs
}

// checkCommentedFlags: the optional flags shown commented out (# - --flag)
// are flags of the command of that file's containers too.
func (k *k8sCheck) checkCommentedFlags(names []string) {
	commented := regexp.MustCompile(`^\s*#\s*- --([a-z0-9-]+)`)
	for _, name := range names {
		subs := map[string]bool{}
		for _, r := range k.runs {
			if r.owner.file == name {
				subs[r.sub] = true
			}
		}
		for i, line := range strings.Split(string(k.files[name]), "\n") {
			m := commented.FindStringSubmatch(line)
			if m == nil {
				continue
			}
			for sub := range subs {
				if _, ok := k.cli[sub].flags[m[1]]; !ok {
					k.problem(fmt.Sprintf("%s:%d", name, i+1), "commented-out --%s is no flag of pcrs-indexer %s", m[1], sub)
				}
			}
		}
	}
}

// ---- editing manifests in memory ----

// edit returns a mutation of file's single document.
func edit(file string, f func(doc map[string]any)) func(*testing.T, map[string][]byte) {
	return func(t *testing.T, files map[string][]byte) {
		t.Helper()
		var doc map[string]any
		if err := yaml.Unmarshal(files[file], &doc); err != nil {
			t.Fatal(err)
		}
		f(doc)
		raw, err := yaml.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		files[file] = raw
	}
}

func replaceOnce(t *testing.T, files map[string][]byte, file, old, new string) {
	t.Helper()
	if bytes.Count(files[file], []byte(old)) != 1 {
		t.Fatalf("%s does not hold %q once", file, old)
	}
	files[file] = bytes.Replace(files[file], []byte(old), []byte(new), 1)
}

// splitPath splits "a.b\.c.0" into a, b.c, 0.
func splitPath(p string) []string {
	var parts []string
	var cur strings.Builder
	for i := 0; i < len(p); i++ {
		switch {
		case p[i] == '\\' && i+1 < len(p):
			i++
			cur.WriteByte(p[i])
		case p[i] == '.':
			parts = append(parts, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(p[i])
		}
	}
	return append(parts, cur.String())
}

// walkTo returns the container of the last element of p, creating maps on
// the way.
func walkTo(doc map[string]any, p string) (any, string) {
	parts := splitPath(p)
	var cur any = doc
	for _, part := range parts[:len(parts)-1] {
		switch c := cur.(type) {
		case map[string]any:
			next, ok := c[part]
			if !ok {
				next = map[string]any{}
				c[part] = next
			}
			cur = next
		case []any:
			i, err := strconv.Atoi(part)
			if err != nil || i >= len(c) {
				panic(fmt.Sprintf("path %s: no element %s", p, part))
			}
			cur = c[i]
		default:
			panic(fmt.Sprintf("path %s: %s is a %T", p, part, cur))
		}
	}
	return cur, parts[len(parts)-1]
}

func set(doc map[string]any, p string, v any) {
	parent, last := walkTo(doc, p)
	switch c := parent.(type) {
	case map[string]any:
		c[last] = v
	case []any:
		i, _ := strconv.Atoi(last)
		c[i] = v
	}
}

func get(doc map[string]any, p string) any {
	parent, last := walkTo(doc, p)
	switch c := parent.(type) {
	case map[string]any:
		return c[last]
	case []any:
		i, _ := strconv.Atoi(last)
		return c[i]
	}
	return nil
}

func del(doc map[string]any, p string) {
	parent, last := walkTo(doc, p)
	if m, ok := parent.(map[string]any); ok {
		if _, ok := m[last]; !ok {
			panic("del: no " + p)
		}
		delete(m, last)
	}
}
