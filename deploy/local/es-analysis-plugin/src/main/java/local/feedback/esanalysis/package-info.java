/**
 * TEST-ONLY Elasticsearch stable plugin for the local stack: the language analyzers
 * {@code finnish}, {@code swedish}, {@code english} and the token filters {@code stemmer} and
 * {@code snowball}, which production Elasticsearch has built in (module analysis-common) but the
 * integ-test-zip distribution lacks. Never install it on production Elasticsearch.
 */
package local.feedback.esanalysis;
