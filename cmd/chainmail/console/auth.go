package console

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// How authentication works:
//
//   - A browser logs in with the password (POST /login): the console
//     makes a server-side session named by a random cookie (HttpOnly,
//     SameSite=Strict, Path=/, expiring with the session). Each session
//     has its own random CSRF token, put in every form; every POST made
//     with the cookie must carry it and come from the console's own
//     origin (Origin, else Referer).
//   - A script sends Authorization: Bearer <token> on any request; it
//     needs no cookie and no CSRF token (a browser never adds that header
//     by itself).

const (
	cookieName = "chainmail_console"
	// maxPost bounds a request body (an uploaded message).
	maxPost = 64 << 20
)

type session struct {
	id      string
	csrf    string
	expires time.Time
	flashes []flash
}

type flash struct {
	Error bool
	Text  string
}

// who is the authenticated requester: a session (browser) or nil for a
// bearer-token script.
type ctxKey struct{}

func sessionOf(r *http.Request) *session {
	s, _ := r.Context().Value(ctxKey{}).(*session)
	return s
}

func randomToken() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on a supported system
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func equal(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// securityHeaders are on every answer.
func securityHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	// same-origin: the console's own POSTs carry a Referer it can check.
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
}

// withAuth lets authenticated requests through to next: a valid bearer
// token, or a live session cookie (and, for a POST, the session's CSRF
// token and the console's own origin).
func (c *Console) withAuth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, maxPost)
		}
		if authz := r.Header.Get("Authorization"); authz != "" {
			tok, ok := strings.CutPrefix(authz, "Bearer ")
			if !ok || c.token == "" || !equal(strings.TrimSpace(tok), string(c.token)) {
				c.deps.Logf("console: refused bearer token from %s for %s %s", clientIP(r), r.Method, r.URL.Path)
				time.Sleep(c.loginDelay)
				c.unauthorized(w, r, true)
				return
			}
			next.ServeHTTP(w, r)
			return
		}
		s := c.session(r)
		if s == nil {
			c.unauthorized(w, r, false)
			return
		}
		if r.Method == http.MethodPost {
			if !sameOrigin(r) {
				c.deps.Logf("console: refused %s %s from %s: not from the console's own origin (Origin %q, Referer %q)", r.Method, r.URL.Path, clientIP(r), r.Header.Get("Origin"), r.Header.Get("Referer"))
				http.Error(w, "forbidden: the request does not come from the console's own pages", http.StatusForbidden)
				return
			}
			if !equal(r.FormValue("csrf"), s.csrf) {
				c.deps.Logf("console: refused %s %s from %s: missing or wrong CSRF token", r.Method, r.URL.Path, clientIP(r))
				http.Error(w, "forbidden: missing or wrong CSRF token (reload the page and try again)", http.StatusForbidden)
				return
			}
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, s)))
	})
}

// unauthorized answers 401 to the API and bearer requests, else sends a
// browser to the login form.
func (c *Console) unauthorized(w http.ResponseWriter, r *http.Request, bearer bool) {
	if bearer || strings.HasPrefix(r.URL.Path, "/api/") {
		w.Header().Set("WWW-Authenticate", `Bearer realm="chainmail console"`)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		json.NewEncoder(w).Encode(map[string]string{"error": "authentication required (Authorization: Bearer <token>)"})
		return
	}
	next := "/"
	if r.Method == http.MethodGet {
		next = r.URL.RequestURI()
	}
	http.Redirect(w, r, "/login?next="+url.QueryEscape(next), http.StatusFound)
}

// sameOrigin reports whether a POST comes from a page of the console:
// its Origin (else its Referer) names the host it was sent to.
func sameOrigin(r *http.Request) bool {
	src := r.Header.Get("Origin")
	if src == "" || src == "null" {
		src = r.Header.Get("Referer")
	}
	if src == "" {
		return false
	}
	u, err := url.Parse(src)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && strings.EqualFold(u.Host, r.Host)
}

// session returns the live session the request's cookie names.
func (c *Console) session(r *http.Request) *session {
	ck, err := r.Cookie(cookieName)
	if err != nil || ck.Value == "" {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.sessions[ck.Value]
	if s == nil {
		return nil
	}
	if !c.now().Before(s.expires) {
		delete(c.sessions, ck.Value)
		return nil
	}
	return s
}

// newSession starts a session and sets its cookie; expired sessions go.
func (c *Console) newSession(w http.ResponseWriter, r *http.Request) *session {
	now := c.now()
	s := &session{id: randomToken(), csrf: randomToken(), expires: now.Add(c.ttl)}
	c.mu.Lock()
	for id, old := range c.sessions {
		if !now.Before(old.expires) {
			delete(c.sessions, id)
		}
	}
	c.sessions[s.id] = s
	c.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: s.id, Path: "/", Expires: s.expires,
		MaxAge: int(c.ttl / time.Second), HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	return s
}

func (c *Console) addFlash(r *http.Request, isErr bool, text string) {
	if s := sessionOf(r); s != nil {
		c.mu.Lock()
		s.flashes = append(s.flashes, flash{Error: isErr, Text: text})
		c.mu.Unlock()
	}
}

func (c *Console) takeFlashes(s *session) []flash {
	if s == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	f := s.flashes
	s.flashes = nil
	return f
}

func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// safeNext keeps a post-login redirect on the console.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") || strings.HasPrefix(next, "/login") {
		return "/history"
	}
	return next
}

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	if c.session(r) != nil {
		http.Redirect(w, r, "/history", http.StatusFound)
		return
	}
	c.render(w, r, http.StatusOK, "login", map[string]any{"Next": safeNext(r.URL.Query().Get("next")), "NoPassword": c.password == ""})
}

func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 1<<16)
	next := safeNext(r.FormValue("next"))
	if !sameOrigin(r) {
		c.deps.Logf("console: refused a login from %s: not from the console's own origin", clientIP(r))
		http.Error(w, "forbidden: the login does not come from the console's own page", http.StatusForbidden)
		return
	}
	if c.password == "" || !equal(r.FormValue("password"), string(c.password)) {
		c.deps.Logf("console: failed login from %s", clientIP(r))
		time.Sleep(c.loginDelay)
		msg := "Wrong password."
		if c.password == "" {
			msg = "Logging in with a password is off (no password_file): use the bearer token."
		}
		c.render(w, r, http.StatusUnauthorized, "login", map[string]any{"Next": next, "Error": msg, "NoPassword": c.password == ""})
		return
	}
	c.newSession(w, r)
	c.deps.Logf("console: login from %s", clientIP(r))
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request) {
	if s := sessionOf(r); s != nil {
		c.mu.Lock()
		delete(c.sessions, s.id)
		c.mu.Unlock()
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}
