package registry

import "testing"

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"a://u:p@h":                     "a://u:xxxxx@h",
		"a://u:p/w@h/x":                 "a://u:xxxxx@h/x",
		"a://u@h":                       "a://u@h",
		"a://h:1/x":                     "a://h:1/x",
		"no scheme:p@h":                 "no scheme:p@h",
		"a://u:p@h:x@y/z":               "a://u:xxxxx@y/z",
		"a://h:1/x?u=a@b":               "a://h:xxxxx@b", // errs on the side of masking
		"a://u:p%zz@h:bad":              "a://u:xxxxx@h:bad",
		"redis://u:secret@h%zz":         "redis://u:xxxxx@h%zz",
		"redis://:secret@h/%zz":         "redis://:xxxxx@h/%zz",
		"amqp://u:p@ss:w@rd@h:5672/%zz": "amqp://u:xxxxx@h:5672/%zz",
	} {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}
