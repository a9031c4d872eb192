package main

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/stratacache/strata/backplane"
)

// stringList is a flag that may repeat: each use appends its value.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }

func (l *stringList) Set(v string) error {
	if v == "" {
		return errors.New("must not be empty")
	}
	*l = append(*l, v)
	return nil
}

// timeFlag is a time given as RFC 3339 (2026-12-06T11:30:00.123456Z) or as
// Unix nanoseconds.
type timeFlag struct{ t time.Time }

func (f *timeFlag) String() string {
	if f == nil || f.t.IsZero() {
		return ""
	}
	return f.t.Format(time.RFC3339Nano)
}

func (f *timeFlag) Set(v string) error {
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		f.t = t
		return nil
	}
	if ns, err := strconv.ParseInt(v, 10, 64); err == nil && ns > 0 {
		f.t = time.Unix(0, ns)
		return nil
	}
	return errors.New("want an RFC 3339 time (2026-12-06T11:30:00Z) or Unix nanoseconds")
}

// SigningKeysEnv names the environment variable that holds the signing keys.
const SigningKeysEnv = "STRATA_SIGNING_KEYS"

// signingKeys returns the backplane signing keys of a command: those of the
// file path when it is not empty, else those of $STRATA_SIGNING_KEYS; none
// when both are empty. See parseKeys for the format.
func signingKeys(path string) ([][]byte, error) {
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("-keys-file: %w", err)
		}
		keys, err := parseKeys(string(b))
		if err != nil {
			return nil, fmt.Errorf("-keys-file %s: %w", path, err)
		}
		if len(keys) == 0 {
			return nil, fmt.Errorf("-keys-file %s: no key in the file", path)
		}
		return keys, nil
	}
	keys, err := parseKeys(os.Getenv(SigningKeysEnv))
	if err != nil {
		return nil, fmt.Errorf("$%s: %w", SigningKeysEnv, err)
	}
	return keys, nil
}

// parseKeys reads signing keys separated by commas, spaces or newlines
// (lines starting with # are comments), the first one signing. Each key is
// hexadecimal (openssl rand -hex 32) or, after "base64:", standard base64
// (openssl rand -base64 32), and is at least backplane.MinSigningKeyLen
// bytes once decoded. Errors name the key by its position, never its value.
func parseKeys(s string) ([][]byte, error) {
	var keys [][]byte
	for line := range strings.Lines(s) {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "#") {
			continue
		}
		for _, f := range strings.FieldsFunc(line, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
			n := len(keys) + 1
			var key []byte
			var err error
			if b64, ok := strings.CutPrefix(f, "base64:"); ok {
				key, err = base64.StdEncoding.DecodeString(b64)
				if err != nil {
					return nil, fmt.Errorf("key %d is not valid base64: %v", n, err)
				}
			} else if key, err = hex.DecodeString(f); err != nil {
				return nil, fmt.Errorf("key %d is not hexadecimal (%v); write base64 keys as base64:KEY", n, err)
			}
			if len(key) < backplane.MinSigningKeyLen {
				return nil, fmt.Errorf("key %d is %d bytes, want at least %d (use 32 random bytes: openssl rand -hex 32)", n, len(key), backplane.MinSigningKeyLen)
			}
			keys = append(keys, key)
		}
	}
	return keys, nil
}
