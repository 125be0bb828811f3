package local.feedback.esanalysis;

import org.apache.lucene.analysis.TokenStream;
import org.apache.lucene.analysis.snowball.SnowballFilter;
import org.elasticsearch.plugin.Inject;
import org.elasticsearch.plugin.NamedComponent;
import org.elasticsearch.plugin.analysis.TokenFilterFactory;
import org.tartarus.snowball.SnowballStemmer;

import java.util.function.Supplier;

/**
 * The token filter {@code snowball} ({@code "language": "Finnish" | "Swedish" | "English" | ...},
 * default English), like Elasticsearch's: Lucene's {@link SnowballFilter} with the named stemmer.
 */
@NamedComponent("snowball")
public class SnowballTokenFilterFactory implements TokenFilterFactory {

    private final Supplier<SnowballStemmer> stemmers;

    @Inject
    public SnowballTokenFilterFactory(SnowballSettings settings) {
        this.stemmers = SnowballStemmers.named(settings.language());
    }

    @Override
    public TokenStream create(TokenStream tokenStream) {
        return new SnowballFilter(tokenStream, stemmers.get());
    }
}
