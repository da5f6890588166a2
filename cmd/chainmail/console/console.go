// Package console is chainmail's web console for postmasters: the verdict
// history (searchable, each record with its checks, symbols and log lines),
// the Postfix hold queue (release, delete, learn), message submission to
// the learners, graphs (server-side SVG) and the running state. It is off
// unless configured, listens on loopback unless told otherwise, and needs
// a password (login form, session cookie) or a bearer token (scripts).
//
// It knows its collaborators only by the small interfaces declared here
// (History, HoldQueue, Learner, Status); `chainmail serve` wires them.
package console

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"log"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"chainmail/checks"
	"chainmail/checks/history"
	"chainmail/checks/secret"
)

// Config is the console's section of the configuration.
type Config struct {
	// Listen is host:port; "" (the default) keeps the console off.
	Listen string `yaml:"listen"`
	// AllowRemote must be true for a Listen address that is not loopback.
	AllowRemote bool `yaml:"allow_remote"`
	// PasswordFile holds the login form's password (at least
	// secret.MinTokenLength characters).
	PasswordFile string `yaml:"password_file"`
	// TokenFile holds the bearer token for scripts (Authorization:
	// Bearer ...), at least secret.MinTokenLength characters.
	TokenFile string `yaml:"token_file"`
	// SessionTTL is how long a login lasts (default 12h).
	SessionTTL checks.Duration `yaml:"session_ttl"`
}

// DefaultSessionTTL is a login's lifetime when session_ttl is not set.
const DefaultSessionTTL = 12 * time.Hour

// History is the verdict history (chainmail/checks/history.History).
type History interface {
	// Search returns the records q selects, newest first.
	Search(ctx context.Context, q history.Query) ([]*history.Record, error)
	// Get returns one record. The console answers 404 for a nil record
	// or an error whose text says "not found" (history.ErrNotFound's),
	// 502 for any other error.
	Get(ctx context.Context, id string) (*history.Record, error)
}

// Held is one message in the hold queue (the same fields as
// milter/holdqueue's Held, so that one converts to the other).
type Held struct {
	QueueID string
	Arrival time.Time
	Sender  string
	Rcpts   []string
	Size    int64
}

// HoldQueue is Postfix's hold queue (milter/holdqueue.Queue through
// AdaptHoldQueue).
type HoldQueue interface {
	List(ctx context.Context) ([]Held, error)
	// Message returns the raw message (header and body).
	Message(ctx context.Context, id string) ([]byte, error)
	Release(ctx context.Context, id string) error
	Delete(ctx context.Context, id string) error
}

// LearnerStat is what one learner knows (the same fields as serve's
// feedback statistics, so that one converts to the other).
type LearnerStat struct {
	Check       string `json:"check"`
	LearnedSpam int    `json:"learned_spam"`
	LearnedHam  int    `json:"learned_ham"`
	MinSpam     int    `json:"min_spam,omitempty"`
	MinHam      int    `json:"min_ham,omitempty"`
	Ready       *bool  `json:"ready,omitempty"`
	Error       string `json:"error,omitempty"`
}

// Learner trains the learners of the engine in force (serve's learning
// path, the one its feedback endpoint uses).
type Learner interface {
	// Learn gives raw (a whole message) to every learner as spam or ham;
	// an error when any learner failed.
	Learn(ctx context.Context, raw []byte, spam bool) error
	Stats(ctx context.Context) ([]LearnerStat, error)
}

// CheckState is one check's state as Status reports it.
type CheckState struct {
	Name   string `json:"name"`
	State  string `json:"state"` // e.g. ok, degraded, disabled
	Detail string `json:"detail,omitempty"`
}

// SuspendedList is a DNS list chainmail stopped querying for a while.
type SuspendedList struct {
	Name   string    `json:"name"`
	Until  time.Time `json:"until"`
	Reason string    `json:"reason,omitempty"`
}

// StoreHealth is the state store's health.
type StoreHealth struct {
	Backend string `json:"backend"`
	OK      bool   `json:"ok"`
	Detail  string `json:"detail,omitempty"`
}

// StatusInfo is the running state shown on the status page.
type StatusInfo struct {
	// Config is the effective configuration: anything yaml.Marshal takes
	// (the configuration struct, a decoded tree), secrets already hidden
	// by the caller; the console hides again every value under a key
	// containing token, password, secret or key.
	Config    any             `json:"config"`
	Checks    []CheckState    `json:"checks"`
	Suspended []SuspendedList `json:"suspended"`
	Store     StoreHealth     `json:"store"`
	Version   string          `json:"version,omitempty"`
	Started   time.Time       `json:"started"`
}

// Status reports the running state.
type Status interface {
	Status(ctx context.Context) (StatusInfo, error)
}

// Deps are the console's collaborators. History, HoldQueue, Learner and
// Status are required; Logf defaults to log.Printf.
type Deps struct {
	History   History
	HoldQueue HoldQueue
	Learner   Learner
	Status    Status
	Logf      func(format string, args ...any)
}

// Console is the web console: an http.Handler, with Start and Shutdown
// to serve it on Config.Listen.
type Console struct {
	cfg      Config
	deps     Deps
	password secret.Value
	token    secret.Value
	ttl      time.Duration
	mux      *http.ServeMux
	tmpl     map[string]*template.Template
	now      func() time.Time
	// loginDelay slows every failed login down.
	loginDelay time.Duration

	mu       sync.Mutex
	sessions map[string]*session

	recentMu sync.Mutex
	recent   []*history.Record
	recentAt time.Time

	srv *http.Server
	ln  net.Listener
}

// New checks cfg, reads the secrets and builds the console. At least one
// of password_file and token_file is required.
func New(cfg Config, deps Deps) (*Console, error) {
	if err := checkListen(cfg); err != nil {
		return nil, err
	}
	if deps.History == nil || deps.HoldQueue == nil || deps.Learner == nil || deps.Status == nil {
		return nil, errors.New("console: History, HoldQueue, Learner and Status are all required")
	}
	if deps.Logf == nil {
		deps.Logf = log.Printf
	}
	c := &Console{cfg: cfg, deps: deps, ttl: time.Duration(cfg.SessionTTL), now: time.Now,
		loginDelay: time.Second, sessions: map[string]*session{}}
	if c.ttl <= 0 {
		c.ttl = DefaultSessionTTL
	}
	if cfg.PasswordFile == "" && cfg.TokenFile == "" {
		return nil, errors.New("console: password_file or token_file is required (nobody could log in)")
	}
	var err error
	if cfg.PasswordFile != "" {
		if c.password, err = secret.ReadToken(cfg.PasswordFile); err != nil {
			return nil, fmt.Errorf("console: password_file: %w", err)
		}
	}
	if cfg.TokenFile != "" {
		if c.token, err = secret.ReadToken(cfg.TokenFile); err != nil {
			return nil, fmt.Errorf("console: token_file: %w", err)
		}
	}
	if err := c.parseTemplates(); err != nil {
		return nil, err
	}
	c.routes()
	return c, nil
}

// checkListen refuses a listen address that is not loopback unless
// allow_remote is set.
func checkListen(cfg Config) error {
	if cfg.Listen == "" {
		return nil
	}
	host, _, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return fmt.Errorf("console: listen %q: %v", cfg.Listen, err)
	}
	if cfg.AllowRemote || isLoopback(host) {
		return nil
	}
	return fmt.Errorf("console: listen %q is not a loopback address: set allow_remote: true to serve the console to the network (behind TLS)", cfg.Listen)
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// ServeHTTP serves the console.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.mux.ServeHTTP(w, r)
}

// Start listens on Config.Listen and serves in the background; with
// Listen "" it does nothing.
func (c *Console) Start() error {
	if c.cfg.Listen == "" {
		return nil
	}
	ln, err := net.Listen("tcp", c.cfg.Listen)
	if err != nil {
		return fmt.Errorf("console: %v", err)
	}
	c.ln = ln
	c.srv = &http.Server{Handler: c, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 2 * time.Minute,
		WriteTimeout: 2 * time.Minute, IdleTimeout: 2 * time.Minute}
	go func() {
		if err := c.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			c.deps.Logf("console: %v", err)
		}
	}()
	c.deps.Logf("console: listening on http://%s", ln.Addr())
	return nil
}

// Addr is the address Start listens on (nil before Start).
func (c *Console) Addr() net.Addr {
	if c.ln == nil {
		return nil
	}
	return c.ln.Addr()
}

// Shutdown stops serving, letting requests in progress finish until ctx
// is done.
func (c *Console) Shutdown(ctx context.Context) error {
	if c.srv == nil {
		return nil
	}
	return c.srv.Shutdown(ctx)
}
