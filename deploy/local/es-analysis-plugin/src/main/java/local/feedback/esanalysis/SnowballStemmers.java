package local.feedback.esanalysis;

import org.tartarus.snowball.SnowballStemmer;

import java.lang.reflect.Constructor;
import java.util.function.Supplier;

/** Looks up the Snowball stemmers shipped in lucene-analysis-common by name ("Finnish", "Swedish", ...). */
final class SnowballStemmers {

    private SnowballStemmers() {}

    /**
     * A factory of fresh stemmers (they hold state, one per token stream) for a Snowball language
     * name as Lucene's {@code SnowballFilter(TokenStream, String)} takes it: the class
     * {@code org.tartarus.snowball.ext.<name>Stemmer}. Fails at once for an unknown name, so a bad
     * setting fails the index creation rather than the first document.
     */
    static Supplier<SnowballStemmer> named(String name) {
        final Constructor<? extends SnowballStemmer> constructor;
        try {
            Class<? extends SnowballStemmer> type = Class.forName(
                "org.tartarus.snowball.ext." + name + "Stemmer", true, SnowballStemmer.class.getClassLoader()
            ).asSubclass(SnowballStemmer.class);
            constructor = type.getConstructor();
        } catch (ReflectiveOperationException | ClassCastException | LinkageError e) {
            throw new IllegalArgumentException("Unknown Snowball stemmer language [" + name + "]", e);
        }
        return () -> {
            try {
                return constructor.newInstance();
            } catch (ReflectiveOperationException e) {
                throw new IllegalStateException("Cannot create Snowball stemmer [" + name + "]", e);
            }
        };
    }
}
