package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"reflect"
	"regexp"
	"strconv"

	"gopkg.in/yaml.v3"
)

// Load reads and parses a configuration file. On failure the error is an
// Errors value listing every problem found, each with file:line and key.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		msg := err.Error()
		var pe *fs.PathError
		if errors.As(err, &pe) {
			msg = "cannot " + pe.Op + ": " + pe.Err.Error() // the path is already in front
		}
		return nil, Errors{{File: path, Msg: msg, cause: err}}
	}
	return Parse(data, path)
}

// Parse parses configuration bytes; path is used in error messages and
// stored in Config.Path. ${VAR} references are expanded from the process
// environment.
func Parse(data []byte, path string) (*Config, error) {
	return parse(data, path, os.LookupEnv)
}

// Validate checks a config built in code (after ApplyDefaults). Errors carry
// key paths but no lines.
func (c *Config) Validate() error {
	ch := &checker{file: c.Path}
	ch.validate(c)
	return ch.result()
}

func parse(data []byte, path string, lookup lookupEnv) (*Config, error) {
	ch := &checker{file: path}
	doc, err := readDocument(data)
	if err != nil {
		ch.yamlErrors(err)
		return nil, ch.result()
	}
	ch.expandTree("", doc, lookup)
	ch.ix = newIndex(doc)
	if ch.ix.overflow() {
		ch.add("", 0, "the document expands to too many nodes (aliases nested too deeply)")
		return nil, ch.result()
	}
	ch.checkShape("", doc, reflect.TypeOf(Config{}))
	var cfg Config
	if err := doc.Decode(&cfg); err != nil {
		ch.yamlErrors(err)
	}
	cfg.Path = path
	cfg.setDefaults(ch.ix)
	ch.validate(&cfg)
	if err := ch.result(); err != nil {
		return nil, err
	}
	return &cfg, nil
}

// readDocument parses the single YAML document of the file; its root must
// be a mapping.
func readDocument(data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("the file is empty")
		}
		return nil, err
	}
	var next yaml.Node
	if err := dec.Decode(&next); !errors.Is(err, io.EOF) {
		line := next.Line
		if err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("line %d: only one YAML document is allowed (found a second one)", line)
	}
	if len(doc.Content) == 0 {
		return nil, errors.New("the file is empty")
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("line %d: the top level must be a mapping of settings (listen, users, shards, databases…)", root.Line)
	}
	return root, nil
}

// checker collects errors while loading and validating one file.
type checker struct {
	file string
	ix   *index
	errs Errors
	// failed holds key paths that could not be read (unknown, bad type,
	// unset variable). Semantic errors at or under them would only repeat the
	// same problem in other words, so they are dropped.
	failed []string
}

// add records a structural error at a known line.
func (c *checker) add(key string, line int, msg string) {
	c.errs = append(c.errs, &Error{File: c.file, Line: line, Key: key, Msg: msg})
	c.failed = append(c.failed, key)
}

// errf records a semantic error, located through the index.
func (c *checker) errf(key, format string, args ...any) {
	for _, f := range c.failed {
		if f != "" && isUnder(key, f) {
			return
		}
	}
	c.errs = append(c.errs, &Error{File: c.file, Line: c.ix.line(key), Key: key, Msg: fmt.Sprintf(format, args...)})
}

func (c *checker) result() error {
	if len(c.errs) == 0 {
		return nil
	}
	c.errs.sortByLine()
	return c.errs
}

var yamlLineRE = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// yamlErrors turns yaml.v3's "line N: msg" errors into located Errors.
func (c *checker) yamlErrors(err error) {
	var msgs []string
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs = te.Errors
	} else {
		msgs = []string{err.Error()}
	}
	for _, m := range msgs {
		sub := yamlLineRE.FindStringSubmatch(m)
		if sub == nil {
			c.add("", 0, m)
			continue
		}
		line, _ := strconv.Atoi(sub[1])
		c.add(c.ix.pathAt(line), line, sub[2])
	}
}
