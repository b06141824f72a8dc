package proxy

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/pgrouter/pgrouter/pgwire"

	"github.com/jackc/pgx/v5/pgproto3"
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

// scramIterations is Postgres's default scram_iterations: verifiers derived
// here and mock challenges look like the ones Postgres makes.
const scramIterations = 4096

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
		ua.scram, err = client.GetStoredCredentialsWithError(scram.KeyFactors{Salt: string(salt), Iters: scramIterations})
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

// authenticate runs the exchange of ua's method; ua is nil for a user that
// does not exist. An unknown user gets the same exchange as a real one (a
// mock challenge, like Postgres's) and the same failure at its end, so the
// answers do not tell which user names exist.
func (s *Server) authenticate(c net.Conn, rd *frameReader, st *serverState, name string, ua *userAuth) error {
	fail := pgwire.Error(pgwire.InvalidPassword, fmt.Sprintf("password authentication failed for user %q", name), "")
	rd.max = maxAuthMessage
	method := st.mockMethod
	if ua != nil {
		method = ua.method
	}
	switch method {
	case "trust":
		return nil
	case "md5":
		return md5Exchange(c, rd, ua, fail)
	}
	creds := s.mockSCRAM(name)
	if ua != nil {
		creds = ua.scram
	}
	if err := scramExchange(c, rd, creds, fail); err != nil {
		return err
	}
	if ua == nil {
		return fail
	}
	return nil
}

// md5Exchange asks for an md5-hashed password; ua nil fails every answer.
func md5Exchange(c net.Conn, rd *frameReader, ua *userAuth, fail error) error {
	var salt [4]byte
	rand.Read(salt[:])
	if err := writeAll(c, appendMsg(nil, &pgproto3.AuthenticationMD5Password{Salt: salt})); err != nil {
		return err
	}
	body, err := readAuth(rd, "password")
	if err != nil {
		return err
	}
	var pm pgproto3.PasswordMessage
	if pm.Decode(body) != nil {
		return pgwire.Error(pgwire.ProtocolViolation, "invalid password packet", "")
	}
	if ua == nil || !ua.md5Matches(pm.Password, salt) {
		return fail
	}
	return nil
}

// scramExchange runs SCRAM-SHA-256 against creds; a wrong proof fails with
// 28P01, a broken exchange with 08P01 or 28P01 like Postgres.
func scramExchange(c net.Conn, rd *frameReader, creds scram.StoredCredentials, fail error) error {
	srv, err := scram.SHA256.NewServer(func(string) (scram.StoredCredentials, error) { return creds, nil })
	if err != nil {
		return err
	}
	conv := srv.NewConversation()
	if err := writeAll(c, appendMsg(nil, &pgproto3.AuthenticationSASL{AuthMechanisms: []string{"SCRAM-SHA-256"}})); err != nil {
		return err
	}
	body, err := readAuth(rd, "SASL")
	if err != nil {
		return err
	}
	var init pgproto3.SASLInitialResponse
	if init.Decode(body) != nil {
		return pgwire.Error(pgwire.ProtocolViolation, "malformed SASL message", "")
	}
	if init.AuthMechanism != "SCRAM-SHA-256" {
		return pgwire.Error(pgwire.InvalidAuthorizationSpec, "client selected an invalid SASL authentication mechanism", "")
	}
	first, err := conv.Step(string(init.Data))
	if err != nil {
		return fail
	}
	if err := writeAll(c, appendMsg(nil, &pgproto3.AuthenticationSASLContinue{Data: []byte(first)})); err != nil {
		return err
	}
	if body, err = readAuth(rd, "SASL"); err != nil {
		return err
	}
	var resp pgproto3.SASLResponse
	if resp.Decode(body) != nil {
		return pgwire.Error(pgwire.ProtocolViolation, "malformed SASL message", "")
	}
	final, err := conv.Step(string(resp.Data))
	if err != nil || !conv.Valid() {
		return fail
	}
	return writeAll(c, appendMsg(nil, &pgproto3.AuthenticationSASLFinal{Data: []byte(final)}))
}

// readAuth reads the client's next authentication message, which must be a
// 'p' of at most maxAuthMessage bytes.
func readAuth(rd *frameReader, what string) ([]byte, error) {
	typ, body, err := rd.next()
	if err != nil {
		return nil, err
	}
	if typ != pgwire.PasswordMessage {
		return nil, pgwire.Error(pgwire.ProtocolViolation, fmt.Sprintf("expected %s response, got message type %d", what, typ), "")
	}
	return body, nil
}

// mockSCRAM returns credentials no password matches, with a salt derived
// from the user name and the instance's secret: repeated attempts for one
// unknown name see the same salt, as they would for a real user.
func (s *Server) mockSCRAM(name string) scram.StoredCredentials {
	mac := hmac.New(sha256.New, s.mockSecret[:])
	mac.Write([]byte(name))
	sum := mac.Sum(nil)
	key := sha256.Sum256(append(sum, 'k'))
	return scram.StoredCredentials{
		KeyFactors: scram.KeyFactors{Salt: string(sum[:16]), Iters: scramIterations},
		StoredKey:  key[:], ServerKey: key[:],
	}
}

// mockMethod is the method unknown users are challenged with: md5 when every
// password user uses md5 (so a challenge type tells nothing), else SCRAM.
func mockMethod(users map[string]*userAuth) string {
	md5, other := 0, 0
	for _, ua := range users {
		switch ua.method {
		case "md5":
			md5++
		case "scram-sha-256":
			other++
		}
	}
	if md5 > 0 && other == 0 {
		return "md5"
	}
	return "scram-sha-256"
}
