package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// The part of Jaeger's query JSON API (/api/traces) this example reads.
// Times are in microseconds since the Unix epoch.

type apiResponse struct {
	Data   []apiTrace `json:"data"`
	Errors []struct {
		Code int    `json:"code"`
		Msg  string `json:"msg"`
	} `json:"errors"`
}

type apiTrace struct {
	TraceID   string                `json:"traceID"`
	Spans     []apiSpan             `json:"spans"`
	Processes map[string]apiProcess `json:"processes"`
}

type apiSpan struct {
	TraceID       string   `json:"traceID"`
	SpanID        string   `json:"spanID"`
	OperationName string   `json:"operationName"`
	References    []apiRef `json:"references"`
	StartTime     int64    `json:"startTime"`
	Duration      int64    `json:"duration"`
	Tags          []apiTag `json:"tags"`
	ProcessID     string   `json:"processID"`
}

// apiRef is a parent (CHILD_OF) or a link (FOLLOWS_FROM).
type apiRef struct {
	RefType string `json:"refType"`
	TraceID string `json:"traceID"`
	SpanID  string `json:"spanID"`
}

type apiTag struct {
	Key   string `json:"key"`
	Type  string `json:"type"`
	Value any    `json:"value"`
}

type apiProcess struct {
	ServiceName string `json:"serviceName"`
}

// tag returns the value of s's tag key as a string ("" if absent).
func (s *apiSpan) tag(key string) string {
	for _, t := range s.Tags {
		if t.Key == key {
			return fmt.Sprint(t.Value)
		}
	}
	return ""
}

// parent returns s's CHILD_OF reference, if any.
func (s *apiSpan) parent() (apiRef, bool) {
	for _, r := range s.References {
		if r.RefType == "CHILD_OF" && r.TraceID == s.TraceID {
			return r, true
		}
	}
	return apiRef{}, false
}

// linksTo reports whether s links to (or is a child of) the span spanID of
// trace traceID.
func (s *apiSpan) linksTo(traceID, spanID string) bool {
	for _, r := range s.References {
		if sameID(r.TraceID, traceID) && sameID(r.SpanID, spanID) {
			return true
		}
	}
	return false
}

// sameID compares hex IDs, ignoring the leading zeros Jaeger may trim.
func sameID(a, b string) bool {
	trim := func(s string) string {
		for len(s) > 1 && s[0] == '0' {
			s = s[1:]
		}
		return s
	}
	return trim(a) == trim(b)
}

func (t *apiTrace) service(s *apiSpan) string { return t.Processes[s.ProcessID].ServiceName }

// span returns the span of t named name on service, if any.
func (t *apiTrace) span(service, name string) (*apiSpan, bool) {
	for i := range t.Spans {
		if s := &t.Spans[i]; s.OperationName == name && (service == "" || t.service(s) == service) {
			return s, true
		}
	}
	return nil, false
}

// jaegerClient reads Jaeger's query API.
type jaegerClient struct {
	base string // such as http://127.0.0.1:16686
	http *http.Client
}

func newJaegerClient(base string) *jaegerClient {
	return &jaegerClient{base: base, http: &http.Client{Timeout: 10 * time.Second}}
}

func (c *jaegerClient) get(ctx context.Context, path string, q url.Values) ([]apiTrace, error) {
	u := c.base + path
	if q != nil {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusNotFound {
		return nil, nil
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s: %.200s", u, resp.Status, body)
	}
	var r apiResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	if len(r.Errors) > 0 && len(r.Data) == 0 {
		return nil, fmt.Errorf("GET %s: %s", u, r.Errors[0].Msg)
	}
	return r.Data, nil
}

// trace returns the trace traceID (nil if Jaeger does not have it yet).
func (c *jaegerClient) trace(ctx context.Context, traceID string) (*apiTrace, error) {
	ts, err := c.get(ctx, "/api/traces/"+traceID, nil)
	if err != nil || len(ts) == 0 {
		return nil, err
	}
	return &ts[0], nil
}

// search returns the recent traces of service with a span named operation
// ("" for any).
func (c *jaegerClient) search(ctx context.Context, service, operation string) ([]apiTrace, error) {
	q := url.Values{"service": {service}, "limit": {strconv.Itoa(100)}, "lookback": {"1h"}}
	if operation != "" {
		q.Set("operation", operation)
	}
	return c.get(ctx, "/api/traces", q)
}

// crossNode is the trace of a write on one node and the receipts it caused
// on the other (their own traces, linked to the write).
type crossNode struct {
	write    *apiTrace
	receipts []*apiTrace
	// set and publish are the write's strata.set and
	// strata.backplane.publish spans; receive is the first receipt's
	// strata.backplane.receive span.
	set, publish, receive *apiSpan
}

// findCrossNode polls Jaeger until it holds the update step's trace on
// node A and a receive span on node B linked to it, or until ctx ends.
func (c *jaegerClient) findCrossNode(ctx context.Context, res *Result, step string) (*crossNode, error) {
	st, ok := res.Step(step)
	if !ok {
		return nil, fmt.Errorf("no step %q", step)
	}
	sender, receiver := res.Services[0], res.Services[1]
	if st.Node == "B" {
		sender, receiver = receiver, sender
	}
	var last error
	for {
		cn, err := c.tryCrossNode(ctx, st.TraceID, sender, receiver)
		if err == nil {
			return cn, nil
		}
		last = err
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w (last: %v)", ctx.Err(), last)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func (c *jaegerClient) tryCrossNode(ctx context.Context, traceID, sender, receiver string) (*crossNode, error) {
	w, err := c.trace(ctx, traceID)
	if err != nil {
		return nil, err
	}
	if w == nil {
		return nil, fmt.Errorf("trace %s not in Jaeger yet", traceID)
	}
	cn := &crossNode{write: w}
	var write *apiSpan
	for _, name := range []string{"strata.set", "strata.remove", "strata.expire", "strata.remove_by_tag", "strata.expire_by_tag", "strata.clear"} {
		if s, ok := w.span(sender, name); ok {
			write = s
			break
		}
	}
	if write == nil {
		return nil, fmt.Errorf("trace %s has no write span on %s", traceID, sender)
	}
	cn.set = write
	pub, ok := w.span(sender, "strata.backplane.publish")
	if !ok {
		return nil, fmt.Errorf("trace %s has no strata.backplane.publish span on %s", traceID, sender)
	}
	cn.publish = pub
	if p, ok := pub.parent(); !ok || !sameID(p.SpanID, write.SpanID) {
		return nil, fmt.Errorf("the publish span's parent is %v, want %s", pub.References, write.SpanID)
	}
	ts, err := c.search(ctx, receiver, "strata.backplane.receive")
	if err != nil {
		return nil, err
	}
	for i := range ts {
		for j := range ts[i].Spans {
			s := &ts[i].Spans[j]
			if s.OperationName == "strata.backplane.receive" && s.linksTo(w.TraceID, write.SpanID) {
				cn.receipts = append(cn.receipts, &ts[i])
				if cn.receive == nil {
					cn.receive = s
				}
			}
		}
	}
	if cn.receive == nil {
		return nil, fmt.Errorf("no strata.backplane.receive span on %s linked to %s/%s yet", receiver, w.TraceID, write.SpanID)
	}
	return cn, nil
}
