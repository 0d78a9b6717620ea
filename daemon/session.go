package daemon

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"sync"
	"time"
)

// The browser console cannot keep a bearer token where a script could
// read it; it posts the token once and gets a session cookie instead:
//
//	GET  /api/session         {"auth_required": bool, "authenticated": bool}
//	POST /api/session         {"token": "..."} -> 200 + Set-Cookie, or 401
//	POST /api/session/logout  {} -> 200, the session ended and the cookie cleared
//
// The cookie is HttpOnly (no script reads it), SameSite=Strict (no other
// site's request carries it) and Secure when the request came over TLS.
// Sessions live in memory: a restart logs everyone out, and so does a
// change of the token.
const (
	sessionPath   = "/api/session"
	sessionCookie = "switchboard_session"
	sessionTTL    = 12 * time.Hour
	maxSessions   = 256
)

type session struct {
	expires time.Time
	token   [sha256.Size]byte // digest of the token it was opened with
}

type sessions struct {
	mu sync.Mutex
	m  map[[sha256.Size]byte]session // by digest of the cookie value
}

func newSessions() *sessions { return &sessions{m: map[[sha256.Size]byte]session{}} }

// open starts a session for the token with digest token and returns the
// cookie value.
func (s *sessions) open(token [sha256.Size]byte) string {
	var b [32]byte
	rand.Read(b[:])
	value := base64.RawURLEncoding.EncodeToString(b[:])
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.m) >= maxSessions {
		s.evict(now)
	}
	s.m[sha256.Sum256([]byte(value))] = session{expires: now.Add(sessionTTL), token: token}
	return value
}

// evict drops expired sessions, and the oldest one if none has expired.
func (s *sessions) evict(now time.Time) {
	var oldest [sha256.Size]byte
	var oldestAt time.Time
	for k, v := range s.m {
		if now.After(v.expires) {
			delete(s.m, k)
			continue
		}
		if oldestAt.IsZero() || v.expires.Before(oldestAt) {
			oldest, oldestAt = k, v.expires
		}
	}
	if len(s.m) >= maxSessions {
		delete(s.m, oldest)
	}
}

// valid reports whether cookie is a live session opened with the token
// whose digest is token.
func (s *sessions) valid(cookie string, token [sha256.Size]byte) bool {
	k := sha256.Sum256([]byte(cookie))
	s.mu.Lock()
	v, ok := s.m[k]
	if ok && time.Now().After(v.expires) {
		delete(s.m, k)
		ok = false
	}
	s.mu.Unlock()
	return ok && subtle.ConstantTimeCompare(v.token[:], token[:]) == 1
}

func (s *sessions) close(cookie string) {
	s.mu.Lock()
	delete(s.m, sha256.Sum256([]byte(cookie)))
	s.mu.Unlock()
}

func (g *adminGuard) sessionRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET "+sessionPath, func(w http.ResponseWriter, r *http.Request) {
		token := g.d.snap.Load().File.Admin.Auth.BearerToken.Reveal()
		writeJSON(w, http.StatusOK, map[string]bool{
			"auth_required": token != "",
			"authenticated": token == "" || g.authenticated(r, token),
		})
	})
	mux.HandleFunc("POST "+sessionPath, g.login)
	mux.HandleFunc("POST "+sessionPath+"/logout", func(w http.ResponseWriter, r *http.Request) {
		if c, err := r.Cookie(sessionCookie); err == nil {
			g.sessions.close(c.Value)
		}
		http.SetCookie(w, sessionCookieFor(r, "", -1))
		writeJSON(w, http.StatusOK, map[string]bool{"authenticated": false})
	})
}

func (g *adminGuard) login(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Token string `json:"token"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<10)).Decode(&req); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": `body must be {"token": "..."}`})
		return
	}
	token := g.d.snap.Load().File.Admin.Auth.BearerToken.Reveal()
	if token == "" {
		writeJSON(w, http.StatusOK, map[string]bool{"auth_required": false, "authenticated": true})
		return
	}
	want := sha256.Sum256([]byte(token))
	got := sha256.Sum256([]byte(req.Token))
	if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
		w.Header().Set("WWW-Authenticate", "Bearer")
		g.refuse(w, r, http.StatusUnauthorized, "auth", "wrong token")
		return
	}
	http.SetCookie(w, sessionCookieFor(r, g.sessions.open(want), int(sessionTTL/time.Second)))
	g.d.log.Info("admin console session opened", "remote", r.RemoteAddr)
	writeJSON(w, http.StatusOK, map[string]bool{"auth_required": true, "authenticated": true})
}

func sessionCookieFor(r *http.Request, value string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name: sessionCookie, Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https",
	}
}
