package stats

import (
	"encoding/json"
	"net/http"
)

var _ http.Handler = (*Plugin)(nil)

// ServeHTTP serves the Snapshot as JSON, for a health or metrics endpoint.
// The HTTP status is 200 while the cache runs ("ok" or "degraded": a
// degraded cache still answers, so a load balancer should keep the node)
// and 503 when it is closed or the plugin is not installed. Methods other
// than GET and HEAD get 405.
func (p *Plugin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	s := p.Snapshot()
	body, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	code := http.StatusOK
	if s.Status == StatusStopped || s.Status == StatusNotStarted {
		code = http.StatusServiceUnavailable
	}
	w.WriteHeader(code)
	if r.Method == http.MethodGet {
		_, _ = w.Write(append(body, '\n'))
	}
}
