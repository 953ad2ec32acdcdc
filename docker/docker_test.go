// Package docker_test checks the container files in docker/ without a container engine:
// the Kubernetes manifests decode strictly into the official API types and agree with each
// other, the compose file's services, ports, volumes and network modes agree with the nginx
// configs, every nginx config passes `nginx -t`, the Dockerfile's own `go build` line yields
// a static binary, and the compose runner's script runs the suite three times.
package docker_test

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	yaml3 "go.yaml.in/yaml/v3"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// ---- Kubernetes ----

// decodeManifests decodes every document of a multi-document YAML file strictly (unknown
// or duplicate fields are errors) into the k8s.io/api type its apiVersion and kind name.
func decodeManifests(data []byte) ([]any, error) {
	var objs []any
	for i, doc := range regexp.MustCompile(`(?m)^---[ \t]*$`).Split(string(data), -1) {
		if isEmptyYAML(doc) {
			continue
		}
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		var obj any
		switch tm.APIVersion + " " + tm.Kind {
		case "apps/v1 Deployment":
			obj = &appsv1.Deployment{}
		case "v1 Service":
			obj = &corev1.Service{}
		case "v1 PersistentVolumeClaim":
			obj = &corev1.PersistentVolumeClaim{}
		case "v1 Pod":
			obj = &corev1.Pod{}
		case "batch/v1 Job":
			obj = &batchv1.Job{}
		default:
			return nil, fmt.Errorf("document %d: kind %q of %q is not one this test knows", i, tm.Kind, tm.APIVersion)
		}
		if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
			return nil, fmt.Errorf("document %d (%s): %w", i, tm.Kind, err)
		}
		objs = append(objs, obj)
	}
	return objs, nil
}

func isEmptyYAML(doc string) bool {
	for _, line := range strings.Split(doc, "\n") {
		if l := strings.TrimSpace(line); l != "" && !strings.HasPrefix(l, "#") {
			return false
		}
	}
	return true
}

// manifests decodes every file of k8s/.
func manifests(t *testing.T) map[string][]any {
	t.Helper()
	files, err := filepath.Glob("k8s/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in docker/k8s (%v)", err)
	}
	out := map[string][]any{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		objs, err := decodeManifests(data)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if len(objs) == 0 {
			t.Fatalf("%s: no objects", f)
		}
		out[filepath.Base(f)] = objs
	}
	return out
}

func only[T any](t *testing.T, all map[string][]any, file string) T {
	t.Helper()
	var found []T
	for _, o := range all[file] {
		if v, ok := o.(T); ok {
			found = append(found, v)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%s: %d objects of type %T, want 1", file, len(found), *new(T))
	}
	return found[0]
}

func TestK8sManifestsDecodeStrictly(t *testing.T) {
	all := manifests(t)
	for _, want := range []string{"reference.yaml", "results-pvc.yaml", "runner-job.yaml", "merge-job.yaml", "results-reader.yaml"} {
		if _, ok := all[want]; !ok {
			t.Errorf("docker/k8s/%s is missing", want)
		}
	}
}

// The strict decoding is what catches a misspelled field: show it does.
func TestK8sStrictDecodingRejectsUnknownAndDuplicateFields(t *testing.T) {
	data, err := os.ReadFile("k8s/runner-job.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for name, mutate := range map[string]func(string) string{
		"misspelled field": func(s string) string { return strings.Replace(s, "completionMode:", "completionMod:", 1) },
		"unknown field": func(s string) string {
			return strings.Replace(s, "  parallelism: ", "  sharding: yes\n  parallelism: ", 1)
		},
		"duplicate field": func(s string) string {
			return strings.Replace(s, "  parallelism: ", "  completions: 2\n  parallelism: ", 1)
		},
	} {
		bad := mutate(string(data))
		if bad == string(data) {
			t.Fatalf("%s: mutation did not apply", name)
		}
		if _, err := decodeManifests([]byte(bad)); err == nil {
			t.Errorf("%s: decoded without error", name)
		}
	}
	if _, err := decodeManifests([]byte("apiVersion: v1\nkind: ConfigMapp\n")); err == nil {
		t.Error("an unknown kind decoded without error")
	}
}

type podSpecOf struct {
	file string
	spec corev1.PodSpec
}

func podSpecs(t *testing.T, all map[string][]any) []podSpecOf {
	t.Helper()
	var out []podSpecOf
	for file, objs := range all {
		for _, o := range objs {
			switch v := o.(type) {
			case *appsv1.Deployment:
				out = append(out, podSpecOf{file, v.Spec.Template.Spec})
			case *batchv1.Job:
				out = append(out, podSpecOf{file, v.Spec.Template.Spec})
			case *corev1.Pod:
				out = append(out, podSpecOf{file, v.Spec})
			}
		}
	}
	return out
}

func TestK8sPodsRunNonRootWithResources(t *testing.T) {
	all := manifests(t)
	specs := podSpecs(t, all)
	if len(specs) < 4 {
		t.Fatalf("found %d pod specs, want the reference, runner, merge and reader pods", len(specs))
	}
	image := ""
	for _, ps := range specs {
		sc := ps.spec.SecurityContext
		if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || *sc.RunAsUser == 0 {
			t.Errorf("%s: pod security context must set runAsNonRoot and a non-zero runAsUser", ps.file)
		}
		if sc == nil || sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
			t.Errorf("%s: want the RuntimeDefault seccomp profile", ps.file)
		}
		for _, c := range ps.spec.Containers {
			cs := c.SecurityContext
			if cs == nil || cs.AllowPrivilegeEscalation == nil || *cs.AllowPrivilegeEscalation ||
				cs.ReadOnlyRootFilesystem == nil || !*cs.ReadOnlyRootFilesystem ||
				cs.Capabilities == nil || !slices.Contains(cs.Capabilities.Drop, corev1.Capability("ALL")) {
				t.Errorf("%s/%s: container must forbid privilege escalation, mount its root read-only and drop ALL capabilities", ps.file, c.Name)
			}
			for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
				req, lim := c.Resources.Requests[r], c.Resources.Limits[r]
				if req.IsZero() || lim.IsZero() {
					t.Errorf("%s/%s: %s request and limit must both be set", ps.file, c.Name, r)
				} else if req.Cmp(lim) > 0 {
					t.Errorf("%s/%s: %s request %s above limit %s", ps.file, c.Name, r, req.String(), lim.String())
				}
			}
			if image == "" {
				image = c.Image
			} else if c.Image != image {
				t.Errorf("%s/%s: image %q differs from %q: all pods run the one sseharness image", ps.file, c.Name, c.Image, image)
			}
		}
	}
}

func TestK8sRunnerIsIndexedShardedJob(t *testing.T) {
	all := manifests(t)
	job := only[*batchv1.Job](t, all, "runner-job.yaml")
	s := job.Spec
	if s.CompletionMode == nil || *s.CompletionMode != batchv1.IndexedCompletion {
		t.Fatalf("completionMode %v, want Indexed", s.CompletionMode)
	}
	if s.Completions == nil || *s.Completions < 2 {
		t.Fatalf("completions %v, want N >= 2 shards", s.Completions)
	}
	n := int(*s.Completions)
	if s.Parallelism == nil || int(*s.Parallelism) != n {
		t.Errorf("parallelism %v, want %d: every shard runs at the same time", s.Parallelism, n)
	}
	if s.BackoffLimitPerIndex == nil || *s.BackoffLimitPerIndex != 0 {
		t.Errorf("backoffLimitPerIndex %v, want 0: a failed shard must not stop the others nor load the target again", s.BackoffLimitPerIndex)
	}
	pod := s.Template.Spec
	if pod.RestartPolicy != corev1.RestartPolicyNever {
		t.Errorf("restartPolicy %q, want Never", pod.RestartPolicy)
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(pod.Containers))
	}
	c := pod.Containers[0]
	args := c.Args
	if len(args) == 0 || args[0] != "run" {
		t.Fatalf("args %q: want `run ...`", args)
	}
	flag := func(name string) string {
		i := slices.Index(args, name)
		if i < 0 || i+1 >= len(args) {
			t.Fatalf("args %q lack %s VALUE", args, name)
		}
		return args[i+1]
	}
	if got, want := flag("--shard"), fmt.Sprintf("$(JOB_COMPLETION_INDEX)/%d", n); got != want {
		t.Errorf("--shard %q, want %q", got, want)
	}
	if got, want := flag("--out"), "/results/shard-$(JOB_COMPLETION_INDEX).json"; got != want {
		t.Errorf("--out %q, want %q", got, want)
	}
	// Every shard waits for one start time, from the sseharness-start ConfigMap, so
	// that pods scheduled apart still load the target together.
	if got := flag("--start-at"); got != "$(START_AT)" {
		t.Errorf("--start-at %q, want $(START_AT)", got)
	}
	var start *corev1.EnvVar
	for i := range c.Env {
		if c.Env[i].Name == "START_AT" {
			start = &c.Env[i]
		}
	}
	if start == nil || start.ValueFrom == nil || start.ValueFrom.ConfigMapKeyRef == nil ||
		start.ValueFrom.ConfigMapKeyRef.Name != "sseharness-start" || start.ValueFrom.ConfigMapKeyRef.Key != "start-at" {
		t.Errorf("START_AT is not declared from the sseharness-start ConfigMap: %+v", start)
	}
	// $(JOB_COMPLETION_INDEX) is expanded by Kubernetes only for variables the container
	// declares: it must come from the completion-index annotation.
	var idx *corev1.EnvVar
	for i := range c.Env {
		if c.Env[i].Name == "JOB_COMPLETION_INDEX" {
			idx = &c.Env[i]
		}
	}
	if idx == nil || idx.ValueFrom == nil || idx.ValueFrom.FieldRef == nil ||
		idx.ValueFrom.FieldRef.FieldPath != "metadata.annotations['batch.kubernetes.io/job-completion-index']" {
		t.Errorf("JOB_COMPLETION_INDEX is not declared from the completion-index annotation: %+v", idx)
	}

	// The target is the reference Service, at its port.
	svc := only[*corev1.Service](t, all, "reference.yaml")
	dep := only[*appsv1.Deployment](t, all, "reference.yaml")
	if len(svc.Spec.Ports) != 1 {
		t.Fatalf("service ports %v, want 1", svc.Spec.Ports)
	}
	wantTarget := fmt.Sprintf("http://%s:%d", svc.Name, svc.Spec.Ports[0].Port)
	if got := flag("--target"); got != wantTarget {
		t.Errorf("--target %q, want the reference Service %q", got, wantTarget)
	}
	if got := flag("--metrics-url"); got != wantTarget+"/metrics" {
		t.Errorf("--metrics-url %q, want %q", got, wantTarget+"/metrics")
	}
	for k, v := range svc.Spec.Selector {
		if dep.Spec.Template.Labels[k] != v {
			t.Errorf("service selector %s=%s does not select the reference pods (%v)", k, v, dep.Spec.Template.Labels)
		}
	}
	if dep.Spec.Replicas == nil || *dep.Spec.Replicas != 1 {
		t.Errorf("reference replicas %v, want 1: sessions live in one server's memory", dep.Spec.Replicas)
	}
	servePort := ""
	for i, a := range dep.Spec.Template.Spec.Containers[0].Args {
		if a == "--addr" && i+1 < len(dep.Spec.Template.Spec.Containers[0].Args) {
			servePort = dep.Spec.Template.Spec.Containers[0].Args[i+1]
		}
	}
	if !strings.HasSuffix(servePort, ":"+strconv.Itoa(int(svc.Spec.Ports[0].Port))) || !strings.HasPrefix(servePort, "0.0.0.0:") {
		t.Errorf("reference serves on %q: want 0.0.0.0 and the Service port %d", servePort, svc.Spec.Ports[0].Port)
	}

	// Results go to the shared volume, which the merge job reads in full.
	pvc := only[*corev1.PersistentVolumeClaim](t, all, "results-pvc.yaml")
	if !slices.Contains(pvc.Spec.AccessModes, corev1.ReadWriteMany) {
		t.Errorf("results volume access modes %v: runner pods on several nodes need ReadWriteMany", pvc.Spec.AccessModes)
	}
	if q := pvc.Spec.Resources.Requests[corev1.ResourceStorage]; q.Cmp(resource.MustParse("100Mi")) < 0 {
		t.Errorf("results volume %s is too small", q.String())
	}
	checkResultsMount(t, "runner-job.yaml", pod, pvc.Name)

	merge := only[*batchv1.Job](t, all, "merge-job.yaml")
	checkResultsMount(t, "merge-job.yaml", merge.Spec.Template.Spec, pvc.Name)
	margs := merge.Spec.Template.Spec.Containers[0].Args
	want := []string{"report", "merge", "/results/merged.json"}
	for i := range n {
		want = append(want, fmt.Sprintf("/results/shard-%d.json", i))
	}
	if !slices.Equal(margs, want) {
		t.Errorf("merge args %q, want %q: exactly the %d shard files", margs, want, n)
	}
	reader := only[*corev1.Pod](t, all, "results-reader.yaml")
	checkResultsMount(t, "results-reader.yaml", reader.Spec, pvc.Name)

	// Runner pods prefer distinct nodes: that is what sharding is for.
	aff := pod.Affinity
	if aff == nil || aff.PodAntiAffinity == nil || len(aff.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution) == 0 ||
		aff.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution[0].PodAffinityTerm.TopologyKey != "kubernetes.io/hostname" {
		t.Errorf("runner pods do not spread over nodes: %+v", aff)
	}
}

func checkResultsMount(t *testing.T, file string, pod corev1.PodSpec, claim string) {
	t.Helper()
	vol := ""
	for _, v := range pod.Volumes {
		if v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName == claim {
			vol = v.Name
		}
	}
	if vol == "" {
		t.Errorf("%s: no volume from claim %q", file, claim)
		return
	}
	for _, m := range pod.Containers[0].VolumeMounts {
		if m.Name == vol && m.MountPath == "/results" {
			return
		}
	}
	t.Errorf("%s: claim %q is not mounted at /results", file, claim)
}

// ---- compose ----

type composeFile struct {
	Name     string                    `yaml:"name"`
	Build    composeBuild              `yaml:"x-sseharness-build"`
	Services map[string]composeService `yaml:"services"`
}

type composeBuild struct {
	Context    string `yaml:"context"`
	Dockerfile string `yaml:"dockerfile"`
}

type composeService struct {
	Build       *composeBuild                `yaml:"build"`
	Image       string                       `yaml:"image"`
	Command     []string                     `yaml:"command"`
	Entrypoint  []string                     `yaml:"entrypoint"`
	Ports       []string                     `yaml:"ports"`
	Volumes     []string                     `yaml:"volumes"`
	NetworkMode string                       `yaml:"network_mode"`
	DependsOn   map[string]map[string]string `yaml:"depends_on"`
	Environment map[string]string            `yaml:"environment"`
	User        string                       `yaml:"user"`
	Ulimits     map[string]map[string]int    `yaml:"ulimits"`
	Healthcheck *struct {
		Test     []string `yaml:"test"`
		Interval string   `yaml:"interval"`
		Timeout  string   `yaml:"timeout"`
		Retries  int      `yaml:"retries"`
	} `yaml:"healthcheck"`
}

// loadCompose decodes compose.yaml; fields this test does not model are errors, so that a
// misspelled key (networkmode, depends-on) cannot slip through.
func loadCompose(t *testing.T) composeFile {
	t.Helper()
	data, err := os.ReadFile("compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cf composeFile
	dec := yaml3.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cf); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	return cf
}

// listenPort is the port of a docker/nginx config's one listen directive.
func listenPort(t *testing.T, conf string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("nginx", conf))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*listen\s+(?:[^;\s]*:)?(\d+)`).FindAllSubmatch(data, -1)
	if len(m) != 1 {
		t.Fatalf("%s: %d listen directives, want 1", conf, len(m))
	}
	return string(m[0][1])
}

func TestComposeTopology(t *testing.T) {
	cf := loadCompose(t)
	var names []string
	for n := range cf.Services {
		names = append(names, n)
	}
	slices.Sort(names)
	if want := []string{"nginx-buffered", "nginx-unbuffered", "reference", "runner"}; !slices.Equal(names, want) {
		t.Fatalf("services %v, want %v", names, want)
	}

	ref := cf.Services["reference"]
	if ref.Build == nil {
		t.Fatal("reference: no build section")
	}
	if _, err := os.Stat(filepath.Join(ref.Build.Context, "go.mod")); err != nil {
		t.Errorf("reference build context %q is not the module root: %v", ref.Build.Context, err)
	}
	if _, err := os.Stat(filepath.Join(ref.Build.Context, ref.Build.Dockerfile)); err != nil {
		t.Errorf("reference dockerfile %q not found from its context: %v", ref.Build.Dockerfile, err)
	}
	if !slices.Equal(ref.Command, []string{"serve", "--addr", "0.0.0.0:8080"}) {
		t.Errorf("reference command %q, want serve on 0.0.0.0:8080", ref.Command)
	}
	published := map[string]bool{}
	for _, p := range ref.Ports {
		parts := strings.Split(p, ":")
		if len(parts) != 3 || parts[0] != "127.0.0.1" || parts[1] != parts[2] {
			t.Errorf("reference port %q: want 127.0.0.1:PORT:PORT (loopback only)", p)
			continue
		}
		published[parts[2]] = true
	}
	if !published["8080"] {
		t.Error("reference port 8080 is not published")
	}
	if ref.Healthcheck == nil || !strings.Contains(strings.Join(ref.Healthcheck.Test, " "), "127.0.0.1:8080/healthz") {
		t.Error("reference healthcheck does not probe /healthz")
	}

	targets := map[string]string{} // runner env var -> expected URL
	targets["DIRECT_URL"] = "http://reference:8080"
	for svc, env := range map[string]string{"nginx-buffered": "NGINX_BUFFERED_URL", "nginx-unbuffered": "NGINX_UNBUFFERED_URL"} {
		s := cf.Services[svc]
		if s.NetworkMode != "service:reference" {
			t.Errorf("%s: network_mode %q, want service:reference (so the configs' 127.0.0.1:8080 is the reference server)", svc, s.NetworkMode)
		}
		if len(s.Ports) != 0 {
			t.Errorf("%s: ports %v: a service in another's network namespace cannot publish ports", svc, s.Ports)
		}
		if !strings.HasPrefix(s.Image, "nginx:") || strings.HasSuffix(s.Image, ":latest") {
			t.Errorf("%s: image %q, want a pinned nginx", svc, s.Image)
		}
		if !slices.Contains(s.Volumes, "./nginx:/etc/sseharness/nginx:ro") {
			t.Errorf("%s: volumes %v lack ./nginx mounted read-only", svc, s.Volumes)
		}
		i := slices.Index(s.Command, "-c")
		if i < 0 || i+1 >= len(s.Command) || !strings.HasPrefix(s.Command[i+1], "/etc/sseharness/nginx/") {
			t.Fatalf("%s: command %q does not name a config under /etc/sseharness/nginx", svc, s.Command)
		}
		conf := strings.TrimPrefix(s.Command[i+1], "/etc/sseharness/nginx/")
		if want := strings.TrimPrefix(svc, "nginx-") + ".conf"; conf != want {
			t.Errorf("%s runs %s, want %s", svc, conf, want)
		}
		port := listenPort(t, conf)
		if !published[port] {
			t.Errorf("%s listens on %s, which the reference service does not publish (%v)", svc, port, ref.Ports)
		}
		if !slices.Contains(s.Command, "daemon off;") {
			t.Errorf("%s: command %q: nginx must stay in the foreground", svc, s.Command)
		}
		if s.Healthcheck == nil || !strings.Contains(strings.Join(s.Healthcheck.Test, " "), "127.0.0.1:"+port+"/.sseharness/nginx-ready") {
			t.Errorf("%s: healthcheck does not probe its ready location on port %s", svc, port)
		}
		if s.DependsOn["reference"]["condition"] != "service_healthy" {
			t.Errorf("%s: must wait for a healthy reference", svc)
		}
		targets[env] = "http://reference:" + port
	}

	run := cf.Services["runner"]
	if run.Build == nil || run.Image != ref.Image {
		t.Errorf("runner: image %q, want the reference's %q built the same way", run.Image, ref.Image)
	}
	for _, dep := range []string{"reference", "nginx-buffered", "nginx-unbuffered"} {
		if run.DependsOn[dep]["condition"] != "service_healthy" {
			t.Errorf("runner: does not wait for a healthy %s", dep)
		}
	}
	for env, want := range targets {
		if got := run.Environment[env]; got != want {
			t.Errorf("runner: %s=%q, want %q", env, got, want)
		}
	}
	if got := run.Environment["METRICS_URL"]; got != "http://reference:8080/metrics" {
		t.Errorf("runner: METRICS_URL %q: server figures must come from the reference directly", got)
	}
	if !slices.Contains(run.Volumes, "./results:"+run.Environment["RESULTS"]) {
		t.Errorf("runner: volumes %v do not mount ./results at RESULTS=%q", run.Volumes, run.Environment["RESULTS"])
	}
	script := ""
	for _, v := range run.Volumes {
		if parts := strings.Split(v, ":"); len(parts) >= 2 && slices.Contains(run.Entrypoint, parts[1]) {
			script = parts[0]
		}
	}
	if script != "./run-suite.sh" {
		t.Errorf("runner: entrypoint %q does not run the mounted ./run-suite.sh", run.Entrypoint)
	}
	if run.User == "" || strings.HasPrefix(run.User, "0") || strings.HasPrefix(run.User, "root") {
		t.Errorf("runner: user %q, want a non-root default", run.User)
	}
}

// The compose decoding is strict: a misspelled key fails it.
func TestComposeDecodingRejectsUnknownKeys(t *testing.T) {
	data, err := os.ReadFile("compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	bad := strings.Replace(string(data), "    network_mode:", "    networkmode:", 1)
	if bad == string(data) {
		t.Fatal("mutation did not apply")
	}
	var cf composeFile
	dec := yaml3.NewDecoder(strings.NewReader(bad))
	dec.KnownFields(true)
	if err := dec.Decode(&cf); err == nil {
		t.Fatal("a misspelled compose key decoded without error")
	}
}

// run-suite.sh runs the suite against each target in turn, writes one result per target,
// passes extra arguments on and exits with the worst status. A fake sseharness records
// its calls.
func TestRunSuiteScript(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh on this machine")
	}
	bin := t.TempDir()
	calls := filepath.Join(t.TempDir(), "calls")
	fake := "#!/bin/sh\necho \"$*\" >> " + calls + "\ncase \"$*\" in *reference:8081*) exit 1;; esac\nexit 0\n"
	if err := os.WriteFile(filepath.Join(bin, "sseharness"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(sh, "run-suite.sh")
	cmd.Env = append(os.Environ(),
		"PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"),
		"DIRECT_URL=http://reference:8080", "NGINX_BUFFERED_URL=http://reference:8081",
		"NGINX_UNBUFFERED_URL=http://reference:8082", "METRICS_URL=http://reference:8080/metrics",
		"RESULTS=/results", "SSEHARNESS_RUN_ARGS=resume completion")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("exit %v, want 1 (the worst run); output:\n%s", err, out)
	}
	got, err := os.ReadFile(calls)
	if err != nil {
		t.Fatal(err)
	}
	want := "" +
		"run --target http://reference:8080 --metrics-url http://reference:8080/metrics --out /results/direct.json resume completion\n" +
		"run --target http://reference:8081 --metrics-url http://reference:8080/metrics --out /results/nginx-buffered.json resume completion\n" +
		"run --target http://reference:8082 --metrics-url http://reference:8080/metrics --out /results/nginx-unbuffered.json resume completion\n"
	if string(got) != want {
		t.Fatalf("calls:\n%s\nwant:\n%s", got, want)
	}
}

// ---- nginx ----

// nginxOrSkip finds nginx; missing, it skips, except with CI=true, where it fails.
func nginxOrSkip(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"nginx", "/usr/sbin/nginx", "/usr/local/sbin/nginx"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("CI=true and nginx is not installed: the nginx configs must be tested")
	}
	t.Skip("nginx not installed: skipping `nginx -t` of docker/nginx (apt-get install nginx-light)")
	return ""
}

// nginxTest runs `nginx -t` on conf with a private prefix, so that neither root nor
// /etc/nginx is needed and no temp directory is left outside the test's.
func nginxTest(t *testing.T, nginx, conf string) ([]byte, error) {
	t.Helper()
	abs, err := filepath.Abs(conf)
	if err != nil {
		t.Fatal(err)
	}
	prefix := t.TempDir()
	return exec.Command(nginx, "-t", "-p", prefix+"/", "-c", abs, "-g", "pid "+filepath.Join(prefix, "nginx.pid")+";").CombinedOutput()
}

func TestNginxConfigsPassNginxT(t *testing.T) {
	nginx := nginxOrSkip(t)
	files, _ := filepath.Glob("nginx/*.conf")
	if len(files) < 2 {
		t.Fatalf("found %v, want buffered.conf and unbuffered.conf", files)
	}
	for _, f := range files {
		out, err := nginxTest(t, nginx, f)
		if err != nil || !bytes.Contains(out, []byte("test is successful")) {
			t.Errorf("nginx -t %s: %v\n%s", f, err, out)
		}
	}
}

// `nginx -t` is able to fail: a broken copy of a config does.
func TestNginxTRejectsBrokenConfig(t *testing.T) {
	nginx := nginxOrSkip(t)
	data, err := os.ReadFile("nginx/buffered.conf")
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(t.TempDir(), "bad.conf")
	broken := strings.Replace(string(data), "proxy_http_version 1.0;", "proxy_http_version 1.0", 1)
	if err := os.WriteFile(bad, []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := nginxTest(t, nginx, bad); err == nil {
		t.Fatalf("nginx -t accepted a config missing a semicolon:\n%s", out)
	}
}

func TestNginxConfigsBuffering(t *testing.T) {
	for conf, want := range map[string][]string{
		"buffered.conf":   {"proxy_buffering on;", "proxy_http_version 1.0;"},
		"unbuffered.conf": {"proxy_buffering off;", "proxy_http_version 1.1;", `proxy_set_header Connection "";`},
	} {
		data, err := os.ReadFile(filepath.Join("nginx", conf))
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range append(want, "proxy_pass http://127.0.0.1:8080;", "proxy_read_timeout 1h;") {
			if !bytes.Contains(data, []byte(w)) {
				t.Errorf("%s lacks %q", conf, w)
			}
		}
		// Stock buffering means the stock buffer sizes: nothing may resize them.
		if conf == "buffered.conf" && regexp.MustCompile(`(?m)^\s*proxy_(buffer_size|buffers|busy_buffers_size)\s`).Match(data) {
			t.Errorf("%s changes nginx's stock buffer sizes", conf)
		}
	}
}

// ---- Dockerfile ----

// dockerfile returns the Dockerfile's instructions, continuation lines joined and comments
// dropped.
func dockerfile(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	cur := ""
	for _, line := range strings.Split(string(data), "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") || (trimmed == "" && cur == "") {
			continue
		}
		if strings.HasSuffix(trimmed, "\\") {
			cur += strings.TrimSuffix(trimmed, "\\") + " "
			continue
		}
		out = append(out, cur+trimmed)
		cur = ""
	}
	return out
}

// shellWords splits a shell command line into words, honouring single and double quotes
// (no expansion): enough for the Dockerfile's one go build line.
func shellWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord, quote := false, byte(0)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			} else {
				cur.WriteByte(c)
			}
		case c == '\'' || c == '"':
			quote, inWord = c, true
		case c == ' ' || c == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated quote in %q", s)
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

type goBuild struct {
	env  []string // VAR=value before the command
	args []string // after "go"
	out  string   // the -o path
}

// dockerGoBuild finds the Dockerfile's `go build` RUN line.
func dockerGoBuild(t *testing.T, instrs []string) goBuild {
	t.Helper()
	var found []goBuild
	for _, in := range instrs {
		if !strings.HasPrefix(in, "RUN ") || !strings.Contains(in, "go build") {
			continue
		}
		words, err := shellWords(strings.TrimPrefix(in, "RUN "))
		if err != nil {
			t.Fatal(err)
		}
		var b goBuild
		i := 0
		for ; i < len(words) && strings.Contains(words[i], "=") && words[i] != "go"; i++ {
			b.env = append(b.env, words[i])
		}
		if i+1 >= len(words) || words[i] != "go" || words[i+1] != "build" || slices.ContainsFunc(words, func(w string) bool { return w == "&&" || w == ";" || w == "|" }) {
			t.Fatalf("the go build RUN line must be one plain command: %q", in)
		}
		b.args = words[i+1:]
		if j := slices.Index(b.args, "-o"); j >= 0 && j+1 < len(b.args) {
			b.out = b.args[j+1]
		}
		found = append(found, b)
	}
	if len(found) != 1 {
		t.Fatalf("%d `go build` RUN lines in the Dockerfile, want 1", len(found))
	}
	return found[0]
}

func TestDockerfileShape(t *testing.T) {
	instrs := dockerfile(t)
	var froms []string
	args := map[string]string{}
	for _, in := range instrs {
		if strings.HasPrefix(in, "FROM ") {
			froms = append(froms, in)
		}
		if strings.HasPrefix(in, "ARG ") && len(froms) == 0 {
			if k, v, ok := strings.Cut(strings.TrimPrefix(in, "ARG "), "="); ok {
				args[k] = v
			}
		}
	}
	if len(froms) < 2 {
		t.Fatalf("FROM lines %q: want a multi-stage build", froms)
	}
	builder := regexp.MustCompile(`^FROM golang:\$\{GO_VERSION\}(-alpine)? AS (\w+)$`).FindStringSubmatch(froms[0])
	if builder == nil {
		t.Fatalf("first stage %q: want FROM golang:${GO_VERSION}... AS NAME", froms[0])
	}
	// The builder's Go must be the module's (the golang images set GOTOOLCHAIN=local).
	mod, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(mod)
	if m == nil || args["GO_VERSION"] != string(m[1]) {
		t.Errorf("ARG GO_VERSION=%q, want go.mod's %q", args["GO_VERSION"], m[1])
	}

	b := dockerGoBuild(t, instrs)
	if !slices.Contains(b.env, "CGO_ENABLED=0") {
		t.Errorf("go build env %q lacks CGO_ENABLED=0", b.env)
	}
	if !slices.Contains(b.args, "-trimpath") {
		t.Errorf("go build %q lacks -trimpath", b.args)
	}
	ld := ""
	for _, a := range b.args {
		if v, ok := strings.CutPrefix(a, "-ldflags="); ok {
			ld = v
		}
	}
	if !strings.Contains(ld, "-s") || !strings.Contains(ld, "-w") {
		t.Errorf("go build -ldflags %q lacks -s -w", ld)
	}

	final := instrs[slices.Index(instrs, froms[len(froms)-1]):]
	var user, entrypoint, copyFrom string
	for _, in := range final {
		switch {
		case strings.HasPrefix(in, "USER "):
			user = strings.TrimPrefix(in, "USER ")
		case strings.HasPrefix(in, "ENTRYPOINT "):
			entrypoint = strings.TrimPrefix(in, "ENTRYPOINT ")
		case strings.HasPrefix(in, "COPY --from="+builder[2]+" "):
			copyFrom = in
		}
	}
	uid, _, _ := strings.Cut(user, ":")
	if n, err := strconv.Atoi(uid); err != nil || n == 0 {
		t.Errorf("final stage USER %q: want a numeric non-root uid (runAsNonRoot checks it)", user)
	}
	if entrypoint != `["sseharness"]` {
		t.Errorf("ENTRYPOINT %s, want [\"sseharness\"]", entrypoint)
	}
	if want := "COPY --from=" + builder[2] + " " + b.out + " /usr/local/bin/sseharness"; copyFrom != want {
		t.Errorf("final stage copies %q, want %q", copyFrom, want)
	}
}

// TestDockerfileStaticBuild runs the Dockerfile's own go build line on this machine and
// checks the binary: statically linked (no interpreter, no shared libraries), stripped,
// no build paths, and the version stamped by -ldflags.
func TestDockerfileStaticBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping the full static build")
	}
	b := dockerGoBuild(t, dockerfile(t))
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "sseharness")
	const version = "docker-test-1"
	args := slices.Clone(b.args)
	for i, a := range args {
		a = strings.ReplaceAll(a, "${VERSION}", version)
		if i > 0 && args[i-1] == "-o" {
			a = out
		}
		args[i] = a
	}
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), b.env...)
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, msg)
	}

	f, err := elf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the binary has a PT_INTERP program header: it is dynamically linked")
		}
	}
	if libs, err := f.ImportedLibraries(); err != nil || len(libs) != 0 {
		t.Errorf("the binary needs shared libraries %v (%v)", libs, err)
	}
	if f.Section(".symtab") != nil {
		t.Error("the binary has a symbol table: -ldflags -s did not apply")
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(data, []byte(root)) {
		t.Errorf("the binary contains the build path %s: -trimpath did not apply", root)
	}
	ver, err := exec.Command(out, "version").CombinedOutput()
	if err != nil || strings.TrimSpace(string(ver)) != "sseharness "+version {
		t.Errorf("`sseharness version` said %q (%v), want the -X stamped %q", ver, err, version)
	}
}
