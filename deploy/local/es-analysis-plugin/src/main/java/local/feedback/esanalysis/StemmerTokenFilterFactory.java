package local.feedback.esanalysis;

import org.apache.lucene.analysis.TokenStream;
import org.apache.lucene.analysis.en.EnglishMinimalStemFilter;
import org.apache.lucene.analysis.en.EnglishPossessiveFilter;
import org.apache.lucene.analysis.en.KStemFilter;
import org.apache.lucene.analysis.en.PorterStemFilter;
import org.apache.lucene.analysis.fi.FinnishLightStemFilter;
import org.apache.lucene.analysis.snowball.SnowballFilter;
import org.apache.lucene.analysis.sv.SwedishLightStemFilter;
import org.apache.lucene.analysis.sv.SwedishMinimalStemFilter;
import org.elasticsearch.plugin.Inject;
import org.elasticsearch.plugin.NamedComponent;
import org.elasticsearch.plugin.analysis.TokenFilterFactory;
import org.tartarus.snowball.SnowballStemmer;

import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.Function;
import java.util.function.Supplier;

/**
 * The token filter {@code stemmer} for the English, Finnish and Swedish stemmers, with the same
 * language names and the same Lucene filters as Elasticsearch's {@code stemmer} filter:
 * {@code english}/{@code porter} (Porter), {@code porter2}, {@code light_english}/{@code kstem},
 * {@code minimal_english}, {@code possessive_english}, {@code finnish} (Snowball),
 * {@code light_finnish}, {@code swedish} (Snowball), {@code light_swedish}, {@code minimal_swedish}.
 * Other languages of the production filter are not provided: an unknown name fails the index
 * creation with the list of supported ones. Default, as in Elasticsearch: {@code porter}.
 */
@NamedComponent("stemmer")
public class StemmerTokenFilterFactory implements TokenFilterFactory {

    private static final Map<String, Function<TokenStream, TokenStream>> FILTERS = new TreeMap<>();

    static {
        FILTERS.put("english", PorterStemFilter::new);
        FILTERS.put("porter", PorterStemFilter::new);
        FILTERS.put("porter2", snowball("English"));
        FILTERS.put("light_english", KStemFilter::new);
        FILTERS.put("kstem", KStemFilter::new);
        FILTERS.put("minimal_english", EnglishMinimalStemFilter::new);
        FILTERS.put("possessive_english", EnglishPossessiveFilter::new);
        FILTERS.put("finnish", snowball("Finnish"));
        FILTERS.put("light_finnish", FinnishLightStemFilter::new);
        FILTERS.put("swedish", snowball("Swedish"));
        FILTERS.put("light_swedish", SwedishLightStemFilter::new);
        FILTERS.put("minimal_swedish", SwedishMinimalStemFilter::new);
    }

    private static Function<TokenStream, TokenStream> snowball(String language) {
        Supplier<SnowballStemmer> stemmers = SnowballStemmers.named(language);
        return in -> new SnowballFilter(in, stemmers.get());
    }

    private final Function<TokenStream, TokenStream> filter;

    @Inject
    public StemmerTokenFilterFactory(StemmerSettings settings) {
        String language = settings.language().isEmpty() ? settings.name() : settings.language();
        if (language.isEmpty()) {
            language = "porter";
        }
        Function<TokenStream, TokenStream> found = FILTERS.get(language.toLowerCase(Locale.ROOT));
        if (found == null) {
            throw new IllegalArgumentException(
                "stemmer language [" + language + "] is not provided by the local-language-analyzers test plugin; supported: "
                    + FILTERS.keySet()
            );
        }
        this.filter = found;
    }

    @Override
    public TokenStream create(TokenStream tokenStream) {
        return filter.apply(tokenStream);
    }
}
