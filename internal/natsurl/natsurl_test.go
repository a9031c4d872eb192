package natsurl

import (
	"net/url"
	"slices"
	"strings"
	"testing"
)

func TestParseServers(t *testing.T) {
	for raw, want := range map[string][]string{
		"nats://a,b:5000":         {"nats://a:4222", "nats://b:5000"},
		"nats://a?tls=true":       {"tls://a:4222"},
		"nats://a?tls_ca=/ca.pem": {"tls://a:4222"},
	} {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		p, err := Parse("x", u, nil, "nats://host")
		if err != nil {
			t.Fatalf("Parse(%q): %v", raw, err)
		}
		if !slices.Equal(p.Servers, want) {
			t.Errorf("Parse(%q).Servers = %q, want %q", raw, p.Servers, want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for raw, want := range map[string]string{
		"nats://a?own=1&zzz=2":          `x: bad URL "nats://a?own=1&zzz=2": unknown parameter "zzz" (known: connect_timeout, creds, max_reconnects, name, own, reconnect_wait, tls, tls_ca, tls_cert, tls_key)`,
		"nats://u:secret@a?tls=maybe":   `x: bad URL "nats://u:xxxxx@a?tls=maybe": tls "maybe" is not a boolean`,
		"nats://a,,b":                   `x: bad URL "nats://a,,b": empty host in the server list`,
		"nats://a/path":                 `x: bad URL "nats://a/path": want nats://host`,
		"nats://a?reconnect_wait=-1s":   `x: bad URL "nats://a?reconnect_wait=-1s": reconnect_wait "-1s" is not a positive duration such as 2s`,
		"nats://a?max_reconnects=-2":    `x: bad URL "nats://a?max_reconnects=-2": max_reconnects "-2" is not an integer >= -1 (-1: forever)`,
		"nats://a?tls_cert=/c.pem":      `x: bad URL "nats://a?tls_cert=/c.pem": tls_cert and tls_key go together`,
		"nats://a?connect_timeout=soon": `x: bad URL "nats://a?connect_timeout=soon": connect_timeout "soon" is not a positive duration such as 2s`,
	} {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		_, err = Parse("x", u, []string{"own"}, "nats://host")
		if err == nil || err.Error() != want {
			t.Errorf("Parse(%q) = %v\nwant %s", raw, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("Parse(%q) error reveals the password", raw)
		}
	}
}
