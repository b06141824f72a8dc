package proxy

import (
	"crypto/md5"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"github.com/xdg-go/scram"

	"github.com/pgrouter/pgrouter/config"
)

// userAuth holds what is needed to authenticate one configured user. SCRAM
// keys are derived once at load (4096 PBKDF2 rounds per login would cost ms).
type userAuth struct {
	user   *config.User
	method string // scram-sha-256 | md5 | trust
	scram  scram.StoredCredentials
	md5    string // md5(password + username) hex, as pg_authid stores it (without the "md5" prefix)
}

func newUserAuth(u *config.User) (*userAuth, error) {
	ua := &userAuth{user: u, method: u.Auth}
	if ua.method == "" {
		ua.method = "scram-sha-256"
	}
	switch ua.method {
	case "trust":
	case "md5":
		if strings.HasPrefix(u.Password, "md5") && len(u.Password) == 35 {
			ua.md5 = u.Password[3:]
		} else {
			sum := md5.Sum([]byte(u.Password + u.Name))
			ua.md5 = hex.EncodeToString(sum[:])
		}
	case "scram-sha-256":
		if strings.HasPrefix(u.Password, "SCRAM-SHA-256$") {
			c, err := parseSCRAMVerifier(u.Password)
			if err != nil {
				return nil, fmt.Errorf("user %s: %w", u.Name, err)
			}
			ua.scram = c
			break
		}
		client, err := scram.SHA256.NewClient(u.Name, u.Password, "")
		if err != nil {
			return nil, fmt.Errorf("user %s: %w", u.Name, err)
		}
		salt := make([]byte, 16)
		rand.Read(salt)
		ua.scram, err = client.GetStoredCredentialsWithError(scram.KeyFactors{Salt: string(salt), Iters: 4096})
		if err != nil {
			return nil, fmt.Errorf("user %s: %w", u.Name, err)
		}
	default:
		return nil, fmt.Errorf("user %s: unknown auth method %q", u.Name, ua.method)
	}
	return ua, nil
}

// parseSCRAMVerifier reads Postgres's pg_authid format:
// SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey> (base64 parts).
func parseSCRAMVerifier(v string) (scram.StoredCredentials, error) {
	var c scram.StoredCredentials
	parts := strings.Split(strings.TrimPrefix(v, "SCRAM-SHA-256$"), "$")
	if len(parts) != 2 {
		return c, fmt.Errorf("malformed SCRAM verifier")
	}
	is, ss, ok := strings.Cut(parts[0], ":")
	ks, vs, ok2 := strings.Cut(parts[1], ":")
	if !ok || !ok2 {
		return c, fmt.Errorf("malformed SCRAM verifier")
	}
	iters, err := strconv.Atoi(is)
	if err != nil {
		return c, fmt.Errorf("malformed SCRAM verifier iterations")
	}
	salt, err1 := base64.StdEncoding.DecodeString(ss)
	stored, err2 := base64.StdEncoding.DecodeString(ks)
	server, err3 := base64.StdEncoding.DecodeString(vs)
	if err1 != nil || err2 != nil || err3 != nil {
		return c, fmt.Errorf("malformed SCRAM verifier encoding")
	}
	c.KeyFactors = scram.KeyFactors{Salt: string(salt), Iters: iters}
	c.StoredKey, c.ServerKey = stored, server
	return c, nil
}

// md5Matches checks a PasswordMessage against md5(inner + salt).
func (ua *userAuth) md5Matches(resp string, salt [4]byte) bool {
	sum := md5.Sum(append([]byte(ua.md5), salt[:]...))
	want := "md5" + hex.EncodeToString(sum[:])
	return subtle.ConstantTimeCompare([]byte(resp), []byte(want)) == 1
}

// scramServer returns a conversation that authenticates against ua whatever
// user name the client puts in its SCRAM message (libpq sends an empty one:
// the user comes from the startup packet).
func (ua *userAuth) scramConversation() (*scram.ServerConversation, error) {
	srv, err := scram.SHA256.NewServer(func(string) (scram.StoredCredentials, error) { return ua.scram, nil })
	if err != nil {
		return nil, err
	}
	return srv.NewConversation(), nil
}
