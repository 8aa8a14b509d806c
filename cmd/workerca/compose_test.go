package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/workerca/workerca/store/storetest"
)

// The files under test, relative to this package.
const (
	composePath    = "../../docker-compose.yml"
	dockerfilePath = "../../Dockerfile"
	goModPath      = "../../go.mod"
)

// composeFile is the part of the Compose format docker-compose.yml uses;
// unknown keys fail the decode, so nothing in the file goes unchecked.
type composeFile struct {
	Name     string                    `yaml:"name"`
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
}

type composeService struct {
	Build       string            `yaml:"build"`
	Image       string            `yaml:"image"`
	Entrypoint  []string          `yaml:"entrypoint"`
	Command     []string          `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	Ports       []string          `yaml:"ports"`
	Healthcheck struct {
		Test     []string `yaml:"test"`
		Interval string   `yaml:"interval"`
		Timeout  string   `yaml:"timeout"`
		Retries  int      `yaml:"retries"`
	} `yaml:"healthcheck"`
	Restart   string `yaml:"restart"`
	DependsOn map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
	Volumes []string `yaml:"volumes"`
}

// deployment is docker-compose.yml read and checked: each service's
// workerca and workerca-agent command lines, with the values the checks
// compare.
type deployment struct {
	file       composeFile
	entrypoint []string           // the Dockerfile's ENTRYPOINT
	scripts    map[string]string  // service -> its sh -ec script, interpolated
	commands   map[string][]argv  // service -> workerca/workerca-agent command lines
	mounts     map[string][]mount // service -> named volumes
	initFlags  *cobra.Command     // `workerca init` with the compose's flags parsed
	serveFlags *cobra.Command     // `workerca serve` likewise
	tokenFlags *cobra.Command     // `workerca token create` likewise
	agentArgs  map[string]string  // the agent's --flag value pairs
}

type argv []string

type mount struct{ volume, target string }

// TestComposeMatchesCLI checks that docker-compose.yml and the Dockerfile
// say what workerca and workerca-agent read: every command line parses
// with the real commands' flags, and ports, host names, credentials,
// health check and start order agree with each other.
func TestComposeMatchesCLI(t *testing.T) {
	t.Parallel()
	d := loadDeployment(t)
	f := d.file

	for _, name := range []string{"postgres", "workerca-init", "workerca", "agent"} {
		if _, ok := f.Services[name]; !ok {
			t.Fatalf("service %q missing from %s", name, composePath)
		}
	}
	for svc, s := range f.Services {
		for _, m := range d.mounts[svc] {
			if _, ok := f.Volumes[m.volume]; !ok {
				t.Errorf("%s mounts %q, which is not a named volume", svc, m.volume)
			}
		}
		if svc != "postgres" && (s.Build != "." || s.Image != "workerca:local") {
			t.Errorf("%s: build %q, image %q; want the image built from the Dockerfile", svc, s.Build, s.Image)
		}
	}

	// Listeners, ports and names.
	httpsAddr, httpAddr := flagString(t, d.initFlags, "https-addr"), flagString(t, d.initFlags, "http-addr")
	_, httpsPort := splitHostPort(t, httpsAddr)
	_, httpPort := splitHostPort(t, httpAddr)
	if h, _ := splitHostPort(t, httpsAddr); h != "0.0.0.0" {
		t.Errorf("--https-addr %s: a container must listen on 0.0.0.0", httpsAddr)
	}
	ca := f.Services["workerca"]
	var published []string
	for _, p := range ca.Ports {
		host, ctr, ok := strings.Cut(p, ":")
		if !ok || host != ctr {
			t.Errorf("workerca port %q: want \"N:N\"", p)
		}
		published = append(published, ctr)
	}
	if slices.Sort(published); !slices.Equal(published, sorted(httpsPort, httpPort)) {
		t.Errorf("workerca publishes %v; init listens on %s and %s", ca.Ports, httpsAddr, httpAddr)
	}
	dnsNames, err := d.initFlags.Flags().GetStringArray("dns-name")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(dnsNames, "workerca") {
		t.Errorf("--dns-name %v lacks the service name workerca, which the agent dials", dnsNames)
	}
	base := mustURL(t, flagString(t, d.initFlags, "base-url"))
	if base.Scheme != "http" || base.Hostname() != "workerca" || base.Port() != httpPort {
		t.Errorf("--base-url %s: want http://workerca:%s (the plain listener)", base, httpPort)
	}

	// The ledger: the DSN init writes names the postgres service as its
	// environment creates the database.
	pg := f.Services["postgres"]
	dsn := mustURL(t, flagString(t, d.initFlags, "db"))
	pass, _ := dsn.User.Password()
	if dsn.Scheme != "postgres" || dsn.Hostname() != "postgres" || dsn.Port() != "5432" ||
		dsn.User.Username() != pg.Environment["POSTGRES_USER"] || pass != pg.Environment["POSTGRES_PASSWORD"] ||
		strings.TrimPrefix(dsn.Path, "/") != pg.Environment["POSTGRES_DB"] || dsn.Query().Get("sslmode") != "disable" {
		t.Errorf("--db %s does not match the postgres service (environment %v, port 5432, no TLS)", dsn.Redacted(), pg.Environment)
	}
	if hc := pg.Healthcheck.Test; len(hc) < 2 || hc[0] != "CMD" || hc[1] != "pg_isready" ||
		!slices.Contains(hc, pg.Environment["POSTGRES_USER"]) || !slices.Contains(hc, pg.Environment["POSTGRES_DB"]) {
		t.Errorf("postgres healthcheck %v: want pg_isready for its user and database", hc)
	}

	// The health check asks the plain listener for a route that exists.
	hc := ca.Healthcheck.Test
	if len(hc) < 2 || hc[0] != "CMD" || hc[1] != "wget" {
		t.Fatalf("workerca healthcheck %v: want [CMD wget ... URL] (busybox wget is in the image)", hc)
	}
	health := mustURL(t, hc[len(hc)-1])
	if health.Scheme != "http" || health.Hostname() != "127.0.0.1" || health.Port() != httpPort || health.Path != "/healthz" {
		t.Errorf("workerca healthcheck URL %s: want http://127.0.0.1:%s/healthz", health, httpPort)
	}

	// serve and token create read the config init writes, in the ca volume.
	cfgPath := filepath.Join(flagString(t, d.initFlags, "dir"), fileConfigName)
	for _, c := range []*cobra.Command{d.serveFlags, d.tokenFlags} {
		if got := flagString(t, c, "config"); got != cfgPath {
			t.Errorf("%s --config %s; init writes %s", c.CommandPath(), got, cfgPath)
		}
	}
	if v1, v2 := d.volumeOf(t, "workerca-init", cfgPath), d.volumeOf(t, "workerca", cfgPath); v1 != v2 {
		t.Errorf("workerca-init writes %s to volume %q, workerca reads it from %q", cfgPath, v1, v2)
	}

	// The agent dials the workerca service on the HTTPS port, by a name
	// in the server certificate, with the token and pin init left in the
	// shared volume.
	a := d.agentArgs
	caURL := mustURL(t, a["--ca"])
	if caURL.Scheme != "https" || caURL.Hostname() != "workerca" || caURL.Port() != httpsPort || !slices.Contains(dnsNames, caURL.Hostname()) {
		t.Errorf("agent --ca %s: want https://workerca:%s, a name in --dns-name %v", caURL, httpsPort, dnsNames)
	}
	if a["--method"] != "token" || a["--out"] == "" {
		t.Errorf("agent flags %v: want --method token and --out", a)
	}
	initScript, agentScript := d.scripts["workerca-init"], d.scripts["agent"]
	tokenFile := a["--token-file"]
	if !strings.Contains(initScript, "mv /shared/agent.token.new "+tokenFile+"\n") {
		t.Errorf("workerca-init does not write the agent's --token-file %s", tokenFile)
	}
	pinFile := filepath.Join(filepath.Dir(tokenFile), fileRootPin)
	if !strings.Contains(initScript, "cp "+filepath.Join(flagString(t, d.initFlags, "dir"), fileRootPin)+" "+pinFile+"\n") ||
		a["--ca-pin"] != "$(cat "+pinFile+")" {
		t.Errorf("agent --ca-pin %q: want $(cat %s), which workerca-init copies from the CA's %s", a["--ca-pin"], pinFile, fileRootPin)
	}
	if v1, v2 := d.volumeOf(t, "workerca-init", tokenFile), d.volumeOf(t, "agent", tokenFile); v1 != v2 {
		t.Errorf("workerca-init writes %s to volume %q, the agent reads it from %q", tokenFile, v1, v2)
	}
	if !strings.HasPrefix(agentScript, "exec workerca-agent run ") {
		t.Errorf("agent script %q: want exec workerca-agent run, so SIGTERM reaches the agent", agentScript)
	}

	// Start order.
	for _, dep := range []struct{ svc, on, cond string }{
		{"workerca-init", "postgres", "service_healthy"},
		{"workerca", "postgres", "service_healthy"},
		{"workerca", "workerca-init", "service_completed_successfully"},
		{"agent", "workerca", "service_healthy"},
	} {
		if got := f.Services[dep.svc].DependsOn[dep.on].Condition; got != dep.cond {
			t.Errorf("%s depends_on %s: condition %q, want %q", dep.svc, dep.on, got, dep.cond)
		}
	}

	// The Dockerfile builds both binaries with the module's Go.
	df := readFile(t, dockerfilePath)
	for _, pkg := range []string{"./cmd/workerca ", "./cmd/workerca-agent"} {
		if !strings.Contains(df, pkg) {
			t.Errorf("%s does not build %s", dockerfilePath, pkg)
		}
	}
	goLine := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindStringSubmatch(readFile(t, goModPath))
	builder := regexp.MustCompile(`(?m)^FROM golang:(\d+\.\d+)\S* AS build$`).FindStringSubmatch(df)
	if goLine == nil || builder == nil || goLine[1] != builder[1] {
		t.Errorf("go.mod says go %v, the Dockerfile builds with golang:%v", goLine, builder)
	}
	if !strings.Contains(df, "CGO_ENABLED=0") || !regexp.MustCompile(`(?m)^USER \S+$`).MatchString(df) {
		t.Errorf("%s: want static binaries (CGO_ENABLED=0) run as a non-root USER", dockerfilePath)
	}
}

// TestComposeBootstrap runs the compose file's bootstrap without Docker:
// each service's script or command, with the real binaries, each named
// volume a temporary directory, the listeners on loopback ports the
// kernel picks and the ledger on SQLite or the test PostgreSQL. It proves
// that the sequence works: init (twice: a restart), token, serve, health
// check, and the agent enrolling with the pin from root.pin.
func TestComposeBootstrap(t *testing.T) {
	t.Parallel()
	requireTools(t, "sh", "cat", "cp", "mv")
	d := loadDeployment(t)
	bin := buildBinaries(t)
	for _, driver := range storetest.Drivers(t) {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			dsn := storetest.Config(t, driver).DSN
			vols := map[string]string{}
			for v := range d.file.Volumes {
				vols[v] = filepath.Join(t.TempDir(), v)
				if err := os.Mkdir(vols[v], 0o700); err != nil {
					t.Fatal(err)
				}
			}
			httpsAddr, httpAddr := flagString(t, d.initFlags, "https-addr"), flagString(t, d.initFlags, "http-addr")
			local := func(svc, s string) string {
				s = strings.NewReplacer(flagString(t, d.initFlags, "db"), dsn,
					httpsAddr, "127.0.0.1:0", httpAddr, "127.0.0.1:0").Replace(s)
				return d.onVolumes(svc, vols, s)
			}

			// workerca-init, then again as after a restart: the CA is kept,
			// a fresh token written.
			initScript := local("workerca-init", d.scripts["workerca-init"])
			runScript(t, bin, initScript)
			caDir := vols[d.volumeOf(t, "workerca-init", flagString(t, d.initFlags, "dir"))]
			shared := vols[d.volumeOf(t, "agent", d.agentArgs["--token-file"])]
			cfgBefore := readFile(t, filepath.Join(caDir, fileConfigName))
			token1 := readFile(t, filepath.Join(shared, "agent.token"))
			runScript(t, bin, initScript)
			if readFile(t, filepath.Join(caDir, fileConfigName)) != cfgBefore {
				t.Errorf("a second workerca-init changed %s", fileConfigName)
			}
			if token2 := readFile(t, filepath.Join(shared, "agent.token")); token2 == token1 || !strings.HasPrefix(token2, "wct_") {
				t.Errorf("the second workerca-init did not write a fresh token: %q then %q", token1, token2)
			}
			requireMode(t, filepath.Join(shared, "agent.token"), 0o600)
			requireMode(t, filepath.Join(caDir, fileAdminToken), 0o600)
			pin := strings.TrimSpace(readFile(t, filepath.Join(shared, fileRootPin)))
			if want, err := rootPin(filepath.Join(caDir, fileRootCert)); err != nil || pin != want {
				t.Fatalf("shared root.pin %q, root.crt's pin %q (%v)", pin, want, err)
			}

			// workerca: serve, in-process, with the service's command.
			serveArgs := strings.Fields(local("workerca", strings.Join(d.commands["workerca"][0][1:], " ")))
			srv := startServer(t, servingLog, serveArgs...)
			health := mustURL(t, d.file.Services["workerca"].Healthcheck.Test[len(d.file.Services["workerca"].Healthcheck.Test)-1])
			health.Host = srv.http
			resp, err := http.Get(health.String())
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("GET %s: %s", health, resp.Status)
			}
			requireServerName(t, srv.https, mustURL(t, d.agentArgs["--ca"]).Hostname(), filepath.Join(caDir, fileRootCert))

			// agent: the service's script, dialling the server's loopback
			// port instead of workerca:8443.
			agentScript := strings.ReplaceAll(local("agent", d.scripts["agent"]), d.agentArgs["--ca"], "https://"+srv.https)
			out := vols[d.volumeOf(t, "agent", d.agentArgs["--out"])]
			runAgent(t, bin, agentScript, filepath.Join(out, "cert.pem"))
			cert := readCerts(t, filepath.Join(out, "cert.pem"))[0]
			want := "spiffe://" + flagString(t, d.initFlags, "trust-domain") + "/worker/" + flagString(t, d.tokenFlags, "pool") + "/" + flagString(t, d.tokenFlags, "worker")
			if len(cert.URIs) != 1 || cert.URIs[0].String() != want {
				t.Errorf("the agent's certificate names %v, want %s", cert.URIs, want)
			}
		})
	}
}

// loadDeployment reads docker-compose.yml and the Dockerfile, and parses
// every workerca command line with the real cobra commands.
func loadDeployment(t *testing.T) *deployment {
	t.Helper()
	dec := yaml.NewDecoder(strings.NewReader(readFile(t, composePath)))
	dec.KnownFields(true)
	d := &deployment{scripts: map[string]string{}, commands: map[string][]argv{}, mounts: map[string][]mount{}}
	if err := dec.Decode(&d.file); err != nil {
		t.Fatalf("%s: %v", composePath, err)
	}
	m := regexp.MustCompile(`(?m)^ENTRYPOINT (\[.*\])$`).FindStringSubmatch(readFile(t, dockerfilePath))
	if m == nil || json.Unmarshal([]byte(m[1]), &d.entrypoint) != nil {
		t.Fatalf("%s: no ENTRYPOINT in JSON form", dockerfilePath)
	}
	for name, s := range d.file.Services {
		for _, v := range s.Volumes {
			parts := strings.Split(v, ":")
			if len(parts) < 2 || strings.HasPrefix(parts[0], ".") || strings.HasPrefix(parts[0], "/") {
				t.Fatalf("%s volume %q: want a named volume", name, v)
			}
			d.mounts[name] = append(d.mounts[name], mount{volume: parts[0], target: parts[1]})
		}
		if name == "postgres" {
			continue
		}
		cmd := append(slices.Clone(s.Entrypoint), s.Command...)
		if s.Entrypoint == nil {
			cmd = append(slices.Clone(d.entrypoint), s.Command...)
		}
		for i := range cmd {
			cmd[i] = interpolate(t, name, cmd[i])
		}
		if len(cmd) == 3 && cmd[0] == "/bin/sh" && cmd[1] == "-ec" {
			d.scripts[name] = cmd[2]
			d.commands[name] = shellCommands(t, name, cmd[2])
		} else {
			d.commands[name] = []argv{cmd}
		}
	}
	for name, cmds := range d.commands {
		for _, c := range cmds {
			switch c[0] {
			case "workerca":
				parsed := parseWorkerca(t, c)
				switch parsed.CommandPath() {
				case "workerca init":
					d.initFlags = parsed
				case "workerca serve":
					d.serveFlags = parsed
				case "workerca token create":
					d.tokenFlags = parsed
				}
			case "workerca-agent":
				d.agentArgs = agentFlags(t, c)
			default:
				t.Errorf("service %s runs %v: only workerca, workerca-agent and shell built-ins are expected", name, c)
			}
		}
	}
	if d.initFlags == nil || d.serveFlags == nil || d.tokenFlags == nil || d.agentArgs == nil {
		t.Fatalf("%s lacks one of workerca init, serve, token create and workerca-agent run", composePath)
	}
	return d
}

// parseWorkerca finds the real cobra command of a workerca command line
// and parses its flags; an unknown flag or a stray argument fails.
func parseWorkerca(t *testing.T, c argv) *cobra.Command {
	t.Helper()
	root := rootCmd(&env{stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}})
	cmd, rest, err := root.Find(c[1:])
	if err != nil || cmd == root || cmd.RunE == nil {
		t.Fatalf("%v: not a workerca command: %v", c, err)
	}
	if err := cmd.ParseFlags(rest); err != nil {
		t.Fatalf("%v: %v", c, err)
	}
	if err := cmd.ValidateArgs(cmd.Flags().Args()); err != nil {
		t.Fatalf("%v: %v", c, err)
	}
	if err := cmd.ValidateRequiredFlags(); err != nil {
		t.Fatalf("%v: %v", c, err)
	}
	return cmd
}

// agentFlags reads `workerca-agent run --flag value ...`. Its flags are
// checked for real when TestComposeBootstrap runs the agent binary with
// them (a bad flag exits 2); here every flag must take a value.
func agentFlags(t *testing.T, c argv) map[string]string {
	t.Helper()
	if len(c) < 2 || c[1] != "run" || len(c)%2 != 0 {
		t.Fatalf("%v: want workerca-agent run --flag value ...", c)
	}
	m := map[string]string{}
	for i := 2; i < len(c); i += 2 {
		if !strings.HasPrefix(c[i], "--") {
			t.Fatalf("%v: %q is not a flag", c, c[i])
		}
		m[c[i]] = c[i+1]
	}
	return m
}

// interpolate applies Compose's variable interpolation, which the file
// may use only to escape a dollar ("$$"): anything else would be filled
// from the environment of whoever runs docker compose.
func interpolate(t *testing.T, svc, s string) string {
	t.Helper()
	if strings.Contains(strings.ReplaceAll(s, "$$", ""), "$") {
		t.Fatalf("service %s: %q uses Compose interpolation; write $$ for a shell $", svc, s)
	}
	return strings.ReplaceAll(s, "$$", "$")
}

// shellCommands splits the small shell scripts the compose file runs into
// command lines: lines (backslash continues one), words, single and
// double quotes, a leading exec, and a final "> file" redirection, which
// is dropped. $(...) stays one word. Anything else fails the test, so
// that a script this cannot read is not checked wrongly.
func shellCommands(t *testing.T, svc, script string) []argv {
	t.Helper()
	var cmds []argv
	for _, line := range strings.Split(strings.ReplaceAll(script, "\\\n", " "), "\n") {
		var words argv
		var w strings.Builder
		inWord := false
		for i := 0; i < len(line); i++ {
			switch c := line[i]; {
			case c == ' ' || c == '\t':
				if inWord {
					words, inWord = append(words, w.String()), false
					w.Reset()
				}
			case c == '\'':
				j := strings.IndexByte(line[i+1:], '\'')
				if j < 0 {
					t.Fatalf("service %s: unterminated ' in %q", svc, line)
				}
				w.WriteString(line[i+1 : i+1+j])
				i, inWord = i+1+j, true
			case c == '"':
				j := strings.IndexByte(line[i+1:], '"')
				if j < 0 || strings.ContainsAny(line[i+1:i+1+j], "`\\") {
					t.Fatalf("service %s: unsupported double quotes in %q", svc, line)
				}
				w.WriteString(line[i+1 : i+1+j])
				i, inWord = i+1+j, true
			case strings.IndexByte("|&;<`(){}*?[]", c) >= 0 || (c == '$' && !strings.HasPrefix(line[i:], "$(")):
				t.Fatalf("service %s: %q uses shell syntax this test does not read (%q)", svc, line, c)
			default:
				w.WriteByte(c)
				inWord = true
			}
		}
		if inWord {
			words = append(words, w.String())
		}
		if n := len(words); n >= 2 && words[n-2] == ">" {
			words = words[:n-2]
		}
		if len(words) > 0 && words[0] == "exec" {
			words = words[1:]
		}
		switch {
		case len(words) == 0:
		case slices.Contains([]string{"umask", "cp", "mv"}, words[0]):
		case slices.Contains(words, ">"):
			t.Fatalf("service %s: redirection not at the end of %q", svc, line)
		default:
			cmds = append(cmds, words)
		}
	}
	return cmds
}

// volumeOf is the named volume that holds path in service svc.
func (d *deployment) volumeOf(t *testing.T, svc, path string) string {
	t.Helper()
	for _, m := range d.mounts[svc] {
		if path == m.target || strings.HasPrefix(path, m.target+"/") {
			return m.volume
		}
	}
	t.Fatalf("service %s: %s is on no named volume", svc, path)
	return ""
}

// onVolumes rewrites the mount points of svc in s to the directories that
// stand for its volumes.
func (d *deployment) onVolumes(svc string, vols map[string]string, s string) string {
	for _, m := range d.mounts[svc] {
		re := regexp.MustCompile(`(^|[\s'"=])` + regexp.QuoteMeta(m.target) + `(/|[\s'")]|$)`)
		s = re.ReplaceAllString(s, "${1}"+vols[m.volume]+"${2}")
	}
	return s
}

func flagString(t *testing.T, c *cobra.Command, name string) string {
	t.Helper()
	v, err := c.Flags().GetString(name)
	if err != nil {
		t.Fatalf("%s --%s: %v", c.CommandPath(), name, err)
	}
	return v
}

func splitHostPort(t *testing.T, addr string) (string, string) {
	t.Helper()
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return h, p
}

func sorted(s ...string) []string {
	slices.Sort(s)
	return s
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// buildBinaries builds workerca and workerca-agent, as the Dockerfile
// does, into a directory for PATH.
func buildBinaries(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command("go", "build", "-o", dir+"/", "github.com/workerca/workerca/cmd/workerca", "github.com/workerca/workerca/cmd/workerca-agent")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return dir
}

// shell is sh -ec script with the binaries in bin first on PATH.
func shell(ctx context.Context, bin, script string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "sh", "-ec", script)
	cmd.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	return cmd
}

func runScript(t *testing.T, bin, script string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if out, err := shell(ctx, bin, script).CombinedOutput(); err != nil {
		t.Fatalf("sh -ec %q: %v\n%s", script, err, out)
	}
}

// runAgent runs the agent's script until it has written certPath, then
// stops it with SIGTERM, as docker compose stop does; it must exit 0.
func runAgent(t *testing.T, bin, script, certPath string) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	cmd := shell(ctx, bin, script)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	deadline := time.After(30 * time.Second)
	for {
		if _, err := os.Stat(certPath); err == nil {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("the agent exited before enrolling: %v\n%s", err, out.String())
		case <-deadline:
			cancel()
			<-done
			t.Fatalf("the agent did not enroll in 30s\n%s", out.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Errorf("the agent, stopped with SIGTERM: %v\n%s", err, out.String())
	}
}

// requireServerName checks that the HTTPS listener at addr presents a
// certificate for name that chains to the root at rootPath.
func requireServerName(t *testing.T, addr, name, rootPath string) {
	t.Helper()
	pool := x509.NewCertPool()
	for _, c := range readCerts(t, rootPath) {
		pool.AddCert(c)
	}
	conn, err := tls.Dial("tcp", addr, &tls.Config{ServerName: name, RootCAs: pool})
	if err != nil {
		t.Fatalf("TLS to %s as %q: %v", addr, name, err)
	}
	conn.Close()
}
